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
"""The bundle's models as the MONAI Label and MONAI Deploy apps use them, built from the bundle's own configs.

:class:`FindingsModel` is zero-shot MeDSLIP (``configs/inference.json``'s network and preprocessing) reporting a
chosen list of findings with their grounding heat maps; :class:`SegmentationModel` is a fine-tuned
``MeDSLIPUNet`` (``configs/finetune_segmentation.json``). :func:`label_map` turns per-finding scores into the
single-channel label map annotators edit (0 background, ``k + 1`` finding ``k``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from monai.bundle import ConfigParser
from monai.transforms import Compose
from monai.utils import TraceKeys

from medslip_monai.grounding import heat_maps

__all__ = [
    "EVALUATION_CONFIGS",
    "SEGMENTATION_CONFIGS",
    "FindingsModel",
    "SegmentationModel",
    "bundle_config",
    "label_map",
    "label_values",
    "load_weights",
    "original_size",
    "read_thresholds",
]

#: The zero-shot evaluation config: inference with the evaluation deltas on top.
EVALUATION_CONFIGS = ("inference.json", "evaluate.json")
#: The segmentation fine-tuning config: the classification one with the segmentation deltas on top.
SEGMENTATION_CONFIGS = ("finetune_classification.json", "finetune_segmentation.json")


def bundle_config(bundle_root: str | os.PathLike, names: str | Sequence[str], **overrides: Any) -> ConfigParser:
    """``<bundle_root>/configs/<name>`` (or several, later ones overriding earlier ones, as ``monai.bundle run``
    merges them) parsed with ``bundle_root`` and ``overrides`` set."""
    paths = [Path(bundle_root) / "configs" / name for name in ([names] if isinstance(names, str) else names)]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"bundle config {path} does not exist: bundle_root must be a medslip-monai bundle")
    parser = ConfigParser()
    parser.read_config([str(path) for path in paths])
    parser.update({"bundle_root": str(bundle_root), **overrides})
    return parser


def load_weights(network: torch.nn.Module, path: str | os.PathLike) -> torch.nn.Module:
    """Load ``path`` (a state dict, or one under ``"model"``) into ``network`` strictly, tensors only."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("model", state) if isinstance(state, Mapping) else state
    try:
        network.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise ValueError(f"{path} does not fit {type(network).__name__}: {e}") from e
    return network.eval()


def original_size(image: torch.Tensor) -> tuple[int, int]:
    """Rows and columns of a preprocessed image as loaded: the original size its ``Resize`` recorded (the image's
    own size when it was never resized)."""
    for operation in getattr(image, "applied_operations", None) or ():
        if operation.get(TraceKeys.CLASS_NAME) == "Resize":
            return tuple(int(s) for s in operation[TraceKeys.ORIG_SIZE])  # type: ignore[return-value]
    return tuple(int(s) for s in image.shape[-2:])  # type: ignore[return-value]


def label_values(classes: Sequence[str]) -> dict[str, int]:
    """The label-map value of each class: ``k + 1`` for class ``k`` (0 is background), MONAI Label's convention."""
    return {name: k + 1 for k, name in enumerate(classes)}


def label_map(
    scores: torch.Tensor, thresholds: float | Sequence[float] | torch.Tensor, present: torch.Tensor | None = None
) -> torch.Tensor:
    """Scores ``[K, H, W]`` -> label map ``[H, W]`` (uint8): pixel = ``k + 1`` for the finding ``k`` scoring highest
    among those at or above their threshold (and ``present``, a ``[K]`` boolean, when given); 0 elsewhere."""
    limits = torch.as_tensor(thresholds, dtype=scores.dtype, device=scores.device).reshape(-1, 1, 1)
    inside = scores >= limits
    if present is not None:
        inside &= present.to(scores.device).reshape(-1, 1, 1)
    best = scores.masked_fill(~inside, -math.inf).argmax(0)
    return torch.where(inside.any(0), best + 1, 0).to(torch.uint8)


def read_thresholds(
    metrics_file: str | os.PathLike | None, classes: Sequence[str], default: float = 0.5
) -> dict[str, list[float]]:
    """Per-class ``classification`` and ``grounding`` thresholds chosen on validation by ``configs/evaluate.json``
    (its ``metrics.json``); ``default`` for a class it does not list, or for all when ``metrics_file`` is None."""
    report = {}
    if metrics_file:
        if not Path(metrics_file).is_file():
            raise FileNotFoundError(
                f"thresholds file {metrics_file} does not exist (write one with configs/evaluate.json)"
            )
        report = json.loads(Path(metrics_file).read_text())
    chosen = {}
    for task in ("classification", "grounding"):
        rows = report.get(task) or {}
        values = [(rows.get(name) or {}).get("threshold") for name in classes]
        chosen[task] = [default if value is None else float(value) for value in values]
    return chosen


class FindingsModel:
    """Zero-shot MeDSLIP from a bundle: ``transforms`` read and prepare an image file (``{"image": path}``; the
    bundle's preprocessing), and a call on a prepared image ``[3, s, s]`` runs the bundle's inferer
    (``network.predict``) and gives the ``classes``' probabilities ``[K]``, locations ``[K, 51]``
    (:func:`~medslip_monai.locations.place_distribution`) and (unless ``heat=False``) heat maps ``[K, H, W]`` in
    [0, 1] at the loaded image's size, in its displayed layout (see ``follow_display``).

    Args:
        bundle_root: the bundle folder (``configs/inference.json`` is used).
        classes: pathology entity names to report.
        model_file: pre-trained weights; defaults to ``<bundle_root>/models/model.pt``.
        device: where the network runs.
    """

    def __init__(
        self,
        bundle_root: str | os.PathLike,
        classes: Sequence[str],
        model_file: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.model_file = str(model_file or Path(bundle_root) / "models" / "model.pt")
        parser = bundle_config(bundle_root, "inference.json", model_file=self.model_file, findings=list(classes))
        self.classes = list(classes)
        self.device = torch.device(device)
        self.network = load_weights(parser.get_parsed_content("network_def"), self.model_file).to(self.device)
        self.transforms: Compose = parser.get_parsed_content("preprocessing")
        self.inferer = parser.get_parsed_content("inferer")

    def __call__(self, image: torch.Tensor, heat: bool = True) -> dict[str, torch.Tensor]:
        batch = torch.as_tensor(image).float()[None].to(self.device)
        prediction = self.inferer(batch, self.network).detach_cpu()
        result = {"probabilities": prediction.probabilities[0], "locations": prediction.locations[0]}
        if heat:
            result["heat"] = heat_maps(prediction.maps[0], original_size(image))
        return result


class SegmentationModel:
    """A fine-tuned ``MeDSLIPUNet`` from a bundle: ``transforms`` as :class:`FindingsModel`'s (at the fine-tuned
    size), and a call on a prepared image gives per-class probabilities ``[K, H, W]`` at the loaded image's size.

    Args:
        bundle_root: the bundle folder (``configs/finetune_segmentation.json`` gives the classes and the network).
        weights: the fine-tuned weights (a ``model.pt`` written by that config).
        pretrained_model: the MeDSLIP model the encoder came from (its settings: backbone and image size);
            defaults to ``<bundle_root>/models/model.pt``.
        classes: the classes the weights were fine-tuned on, when not the config's.
        device: where the network runs.
    """

    def __init__(
        self,
        bundle_root: str | os.PathLike,
        weights: str | os.PathLike,
        pretrained_model: str | os.PathLike | None = None,
        classes: Sequence[str] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        pretrained = str(pretrained_model or Path(bundle_root) / "models" / "model.pt")
        parser = bundle_config(bundle_root, SEGMENTATION_CONFIGS, pretrained_model=pretrained)
        if classes:
            parser["classes"] = list(classes)
        parser["network_def#encoder_weights"] = None  # every weight comes from the fine-tuned file
        self.classes = list(parser.get_parsed_content("classes"))
        self.image_size = int(parser.get_parsed_content("image_size"))
        self.device = torch.device(device)
        self.network = load_weights(parser.get_parsed_content("network_def"), weights).to(self.device)
        inference = bundle_config(bundle_root, "inference.json", model_file=pretrained, image_size=self.image_size)
        self.transforms: Compose = inference.get_parsed_content("preprocessing")

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.network(torch.as_tensor(image).float()[None].to(self.device))
        logits = F.interpolate(logits.float(), size=original_size(image), mode="bilinear", align_corners=False)
        return torch.sigmoid(logits[0]).cpu()
