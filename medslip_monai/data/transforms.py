# Copyright (c) 2026 medslip-monai contributors
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#     http://www.apache.org/licenses/LICENSE-2.0
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Dictionary transforms of the MeDSLIP data pipeline (MONAI style: ``keys``, ``allow_missing_keys``).

All per-sample work that the official code did inside the network (matrix building, ProtoCL negative sampling)
happens here, on the data-loader workers.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.apps.detection.transforms.box_ops import convert_box_to_mask
from monai.config import KeysCollection
from monai.data.box_utils import clip_boxes_to_image, convert_box_mode
from monai.transforms import Flip, MapTransform, RandomizableTransform
from monai.utils import TransformBackends, look_up_option

from medslip_monai.data.readers import follow_display
from medslip_monai.vocab import (
    ANATOMIES,
    LATERAL_ANATOMY_PAIRS,
    PATHOLOGIES,
    UNPAIRED_SIDED_ANATOMIES,
    anatomy_index,
    pathology_index,
)

__all__ = [
    "item_name",
    "BoxesToMaskd",
    "ClassIndexd",
    "triplets_to_matrix",
    "TripletsToMatrixd",
    "SampleProtoCLNegativesd",
    "RandLateralFlipd",
    "AsThreeChannelsd",
    "DecodeFindingMasksd",
    "TripletsToMatrixD",
    "TripletsToMatrixDict",
    "SampleProtoCLNegativesD",
    "SampleProtoCLNegativesDict",
    "RandLateralFlipD",
    "RandLateralFlipDict",
    "AsThreeChannelsD",
    "AsThreeChannelsDict",
    "DecodeFindingMasksD",
    "DecodeFindingMasksDict",
    "BoxesToMaskD",
    "BoxesToMaskDict",
    "ClassIndexD",
    "ClassIndexDict",
]


def item_name(data: Mapping) -> str:
    """``item '<image path>'`` for a data dictionary, raw or loaded (a MetaTensor names its file); ``item`` else."""
    image = data.get("image")
    if hasattr(image, "meta"):  # a loaded MetaTensor: name its file
        image = image.meta.get("filename_or_obj")
    return f"item {image!r}" if isinstance(image, str) else "item"


def triplets_to_matrix(triplets: Sequence[Sequence[Any]]) -> torch.Tensor:
    """``[(anatomy, pathology, 1|0), ...]`` -> int8 matrix ``[51, 75]`` of 1 / 0 / -1 (unmentioned).

    A cell both affirmed and negated counts as present. Raises ``ValueError`` for unknown names or values.
    """
    matrix = torch.full((len(ANATOMIES), len(PATHOLOGIES)), -1, dtype=torch.int8)
    for triplet in triplets:
        if len(triplet) != 3:
            raise ValueError(f"triplet {triplet!r} is not [anatomy, pathology, value]")
        anatomy, pathology, value = triplet
        if value not in (0, 1):
            raise ValueError(f"triplet {triplet!r} has value {value!r}; expected 1 (present) or 0 (negated)")
        try:
            row, column = anatomy_index(anatomy), pathology_index(pathology)
        except KeyError as e:
            raise ValueError(e.args[0]) from None
        matrix[row, column] = max(int(matrix[row, column]), int(value))
    return matrix


#: Row order that swaps every left/right anatomy pair; which rows have a mirror; one-sided rows without one.
_SWAP_ORDER = list(range(len(ANATOMIES)))
for _left, _right in LATERAL_ANATOMY_PAIRS:
    _SWAP_ORDER[anatomy_index(_left)], _SWAP_ORDER[anatomy_index(_right)] = anatomy_index(_right), anatomy_index(_left)
_UNPAIRED = [anatomy_index(name) for name in UNPAIRED_SIDED_ANATOMIES]
_PAIRED = torch.tensor([_SWAP_ORDER[k] != k for k in range(len(ANATOMIES))])


class TripletsToMatrixd(MapTransform):
    """Turn the triplet list under ``keys`` into the anatomy x pathology matrix under ``matrix_key``.

    Args:
        keys: key of the triplets. Defaults to ``"triplets"``.
        matrix_key: output key. Defaults to ``"matrix"``.
        remove_source: drop the (ragged, uncollatable) triplet list afterwards. Defaults to True.
        mirror_negatives: a finding stated present at a one-sided place (``left_costophrenic``) and not mentioned at
            the mirror place is marked absent there (0), so that the side becomes something to learn; off by default
            (the official labels leave the mirror cell unmentioned).
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        keys: KeysCollection = "triplets",
        matrix_key: str = "matrix",
        remove_source: bool = True,
        mirror_negatives: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.matrix_key = matrix_key
        self.remove_source = remove_source
        self.mirror_negatives = mirror_negatives

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            try:
                matrix = triplets_to_matrix(d[key])
            except ValueError as e:
                raise ValueError(f"{item_name(d)}: bad {key!r}: {e}") from None
            if self.mirror_negatives:
                mirrored = matrix[_SWAP_ORDER]  # row a holds what the report says at a's mirror place
                matrix = torch.where((matrix == -1) & (mirrored == 1) & _PAIRED[:, None], 0, matrix).to(torch.int8)
            d[self.matrix_key] = matrix
            if self.remove_source:
                del d[key]
        return d


class SampleProtoCLNegativesd(RandomizableTransform, MapTransform):
    """Sample ProtoCL negatives for both streams from the matrix under ``keys``.

    For each pathology, ``num_negatives`` anatomies not co-occurring with it (matrix != 1, so negated and unmentioned
    cells both qualify, as in the official code), drawn without replacement; likewise pathologies for each anatomy.
    Slots that cannot be filled hold -1. Outputs ``pathology_negatives [75, N]`` and ``anatomy_negatives [51, N]``.

    Args:
        keys: key of the matrix. Defaults to ``"matrix"``.
        num_negatives: negatives per query. Defaults to 7 (the official value).
    """

    backend = [TransformBackends.NUMPY]

    def __init__(
        self, keys: KeysCollection = "matrix", num_negatives: int = 7, allow_missing_keys: bool = False
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob=1.0)
        self.num_negatives = num_negatives

    def _sample(self, positive: np.ndarray) -> np.ndarray:
        """Rows of ``positive`` (queries x entries, bool) -> ``[queries, num_negatives]`` sampled non-positive columns."""
        keys = self.R.random_sample(positive.shape)
        keys[positive] = 2.0  # never chosen before every non-positive entry is
        order = np.argsort(keys, axis=1)[:, : self.num_negatives]
        filled = np.arange(self.num_negatives)[None, :] < (~positive).sum(1, keepdims=True)
        return np.where(filled, order, -1).astype(np.int64)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            positive = np.asarray(d[key]) == 1
            d["pathology_negatives"] = torch.from_numpy(self._sample(positive.T))
            d["anatomy_negatives"] = torch.from_numpy(self._sample(positive))
        return d


class RandLateralFlipd(RandomizableTransform, MapTransform):
    """Mirror images left-right (MONAI ``Flip`` along the columns, recorded in the image's applied operations) and
    swap the left/right anatomy rows of the matrix to match.

    The official pipeline flips images without touching the labels, turning "left effusion" into label noise.
    Here the labels follow the image; a sample mentioning an anatomy with no mirror partner (e.g. right middle lobe)
    is left unflipped.

    Args:
        keys: image-like keys ``[C, H, W]`` to mirror along the last axis.
        matrix_key: key of the anatomy x pathology matrix. Defaults to ``"matrix"``.
        prob: flip probability. Defaults to 0.5.
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self, keys: KeysCollection, matrix_key: str = "matrix", prob: float = 0.5, allow_missing_keys: bool = False
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.matrix_key = matrix_key
        self.flipper = Flip(spatial_axis=1)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize(None)
        matrix = torch.as_tensor(d[self.matrix_key])
        if not self._do_transform or bool((matrix[_UNPAIRED] >= 0).any()):
            return d
        d[self.matrix_key] = matrix[_SWAP_ORDER]
        for key in self.key_iterator(d):
            d[key] = self.flipper(d[key])
        return d


class AsThreeChannelsd(MapTransform):
    """Make channel-first images 3-channel for the ImageNet-shaped trunk: grey ``[1, ...]`` is repeated, colour
    ``[3, ...]`` kept (:class:`~medslip_monai.data.LoadXRayd` gives one or the other)."""

    backend = [TransformBackends.TORCH]

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            channels = image.shape[0]
            if channels == 1:
                d[key] = image.repeat(3, *([1] * (image.ndim - 1)))
            elif channels != 3:
                raise ValueError(f"{item_name(d)}: {key!r} has {channels} channels; expected 1 (grey) or 3 (colour)")
        return d


class DecodeFindingMasksd(MapTransform):
    """Unpack a label map ``[1, H, W]`` into finding masks ``[N, H, W]``.

    Args:
        keys: keys of the label maps.
        num_findings: number of findings ``N``.
        encoding: ``"bits"`` (bit ``k`` set where finding ``k`` lies: the synthetic world's maps, where findings may
            overlap) or ``"indices"`` (value ``k + 1`` where finding ``k`` lies, 0 background: the label maps
            annotators save in MONAI Label). Values beyond ``N`` raise ``ValueError`` naming the image.
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self, keys: KeysCollection, num_findings: int, encoding: str = "bits", allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.num_findings = num_findings
        self.encoding = look_up_option(encoding, ("bits", "indices"))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            packed = torch.as_tensor(d[key])[0].round().to(torch.int64)
            if self.encoding == "indices":
                if int(packed.max()) > self.num_findings or int(packed.min()) < 0:
                    source = getattr(d[key], "meta", {}).get("filename_or_obj") or item_name(d)
                    raise ValueError(
                        f"{source}: label values {packed.unique().tolist()} outside 0..{self.num_findings}"
                    )
                d[key] = (packed.unsqueeze(0) == torch.arange(1, self.num_findings + 1)[:, None, None]).to(
                    torch.float32
                )
                continue
            bits = 2 ** torch.arange(self.num_findings, dtype=torch.int64)
            d[key] = ((packed.unsqueeze(0) & bits[:, None, None]) > 0).to(torch.float32)
        return d


class BoxesToMaskd(MapTransform):
    """Rasterise boxes ``[[x, y, w, h], ...]`` (pixels of the image as stored: x along columns, y along rows) into a
    mask ``[1, H, W]`` the size of ``reference_key``'s image, written to ``output_key``.

    Boxes are in the stored image's pixels: when the image was flipped for display (a DICOM file's
    ``PatientOrientation``, see :func:`~medslip_monai.data.readers.follow_display`) the mask is flipped with it.
    Every pixel a box touches is inside (the start is floored, the end ceiled; the released scripts truncate, which
    differs only for fractional boxes). Boxes are clipped to the image and drawn with MONAI's
    ``convert_box_to_mask``; a box with no positive width and height, or one wholly outside, raises ``ValueError``
    naming the image.
    """

    backend = [TransformBackends.NUMPY]

    def __init__(
        self,
        keys: KeysCollection,
        reference_key: str = "image",
        output_key: str = "truth",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.reference_key, self.output_key = reference_key, output_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        height, width = (int(v) for v in d[self.reference_key].shape[-2:])
        for key in self.key_iterator(d):
            boxes = np.asarray(d[key], dtype=np.float64).reshape(-1, 4)  # x, y, w, h
            corners = convert_box_mode(boxes, src_mode="xywh", dst_mode="xyxy")
            corners = np.concatenate([np.floor(corners[:, :2]), np.ceil(corners[:, 2:])], axis=1)
            # rows first, like the image: (y0, x0, y1, x1) within (height, width)
            corners, kept = clip_boxes_to_image(corners[:, [1, 0, 3, 2]], (height, width), remove_empty=True)
            if not len(boxes):
                raise ValueError(f"{item_name(d)}: {key!r} holds no box")
            bad = [list(box) for box, k, size in zip(d[key], kept, boxes[:, 2:]) if not k or size.min() <= 0]
            if bad:
                raise ValueError(f"{item_name(d)}: box {bad[0]} is empty or outside the {width} x {height} image")
            masks = convert_box_to_mask(corners.astype(np.int64), np.ones(len(corners), np.int64), (height, width), 0)
            mask = torch.as_tensor(masks.max(0, keepdims=True), dtype=torch.float32)
            d[self.output_key] = follow_display(mask, d[self.reference_key])
        return d


class ClassIndexd(MapTransform):
    """Replace a class name (``"finding": "Effusion"``) by its index in ``classes`` (a long tensor); an unknown name
    raises ``ValueError`` naming it and the image."""

    def __init__(self, keys: KeysCollection, classes: Sequence[str], allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.classes = list(classes)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            if d[key] not in self.classes:
                raise ValueError(f"{item_name(d)}: class {d[key]!r} is not one of {self.classes}")
            d[key] = torch.tensor(self.classes.index(d[key]))
        return d


TripletsToMatrixD = TripletsToMatrixDict = TripletsToMatrixd
SampleProtoCLNegativesD = SampleProtoCLNegativesDict = SampleProtoCLNegativesd
RandLateralFlipD = RandLateralFlipDict = RandLateralFlipd
AsThreeChannelsD = AsThreeChannelsDict = AsThreeChannelsd
DecodeFindingMasksD = DecodeFindingMasksDict = DecodeFindingMasksd
BoxesToMaskD = BoxesToMaskDict = BoxesToMaskd
ClassIndexD = ClassIndexDict = ClassIndexd
