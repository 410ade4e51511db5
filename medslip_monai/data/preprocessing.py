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
"""The one preprocessing chain from a radiograph file to the network input, shared by every bundle config
(pre-training, validation, inference, evaluation, fine-tuning) and by the MONAI Label and MONAI Deploy apps."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from monai.transforms import Compose, NormalizeIntensityd, Resized, ScaleIntensityd

from medslip_monai.data.readers import LoadXRayd
from medslip_monai.data.transforms import AsThreeChannelsd

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "radiograph_transforms"]

#: ImageNet channel statistics, which the ResNet trunk's input is normalised with (as in the official code).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def radiograph_transforms(
    image_size: int,
    masks: Sequence[str] = (),
    prepare: Sequence[Callable] = (),
    labels: Sequence[Callable] = (),
    augmentation: Sequence[Callable] = (),
    outputs: Sequence[Callable] = (),
    image_key: str = "image",
) -> Compose:
    """Radiograph file -> network input ``[3, image_size, image_size]``, with optional stages around the fixed steps.

    The fixed steps, in this order: :class:`~medslip_monai.data.LoadXRayd` (any format, grey ``[1, H, W]`` or
    colour ``[3, H, W]``) -> *prepare* -> min-max scaling to [0, 1] -> area resizing to ``image_size`` (``masks``
    nearest-neighbour) -> *labels* -> *augmentation* -> three channels (grey repeated) -> ImageNet normalisation ->
    *outputs*. Augmentations therefore see one channel of a grey image in [0, 1], and every caller gives the same
    file the same tensor.

    Args:
        image_size: side of the square network input.
        masks: keys of masks or label maps resized with the image (loaded or made by ``prepare``).
        prepare: transforms on the loaded data, before scaling and resizing (load label maps, rasterise boxes).
        labels: transforms after resizing (decode label maps, triplets to matrix, select cached keys).
        augmentation: random transforms (training only).
        outputs: transforms after normalisation (ProtoCL negatives, dtypes, key selection).
        image_key: the image's key. Defaults to ``"image"``.
    """
    keys = [image_key, *masks]
    return Compose(
        [
            LoadXRayd(keys=image_key),
            *prepare,
            ScaleIntensityd(keys=image_key),
            Resized(keys=keys, spatial_size=[image_size, image_size], mode=["area"] + ["nearest"] * len(masks)),
            *labels,
            *augmentation,
            AsThreeChannelsd(keys=image_key),
            NormalizeIntensityd(keys=image_key, subtrahend=IMAGENET_MEAN, divisor=IMAGENET_STD, channel_wise=True),
            *outputs,
        ]
    )
