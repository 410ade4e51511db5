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
"""Pieces that plug MeDSLIP into MONAI's Ignite engines: batch preparation, zero-shot inference, optimiser groups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.engines import PrepareBatch
from monai.inferers import Inferer
from torch import nn

from medslip_monai.vocab import pathology_index

__all__ = [
    "PrepareImageAndTargets",
    "ZeroShotInferer",
    "grounding_maps",
    "weight_decay_groups",
    "zero_shot_scores",
    "grounding_pairs",
    "grounding_box_pairs",
    "training_scalars",
]


class PrepareImageAndTargets(PrepareBatch):
    """``batch -> (image, {key: tensor})``: the image and a dict of the named target tensors, moved to the device.

    Args:
        target_keys: batch keys gathered into the targets dict; keys absent from a batch are skipped.
        image_key: the network input. Defaults to ``"image"``.
    """

    def __init__(self, target_keys: Sequence[str], image_key: str = "image") -> None:
        self.target_keys = tuple(target_keys)
        self.image_key = image_key

    def __call__(
        self,
        batchdata: dict[str, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        def move(value: torch.Tensor) -> torch.Tensor:
            value = value.as_tensor() if hasattr(value, "as_tensor") else value
            return value.to(device=device, non_blocking=non_blocking, **kwargs)

        targets = {key: move(batchdata[key]) for key in self.target_keys if key in batchdata}
        return move(batchdata[self.image_key]), targets


def grounding_maps(attention: torch.Tensor) -> torch.Tensor:
    """Cross-attention of every decoder layer ``[B, L, Q, h, w]`` -> grounding maps ``[B, Q, h, w]``.

    The official construction: the head-averaged attention of each query over the image tokens, averaged over the
    decoder layers.
    """
    return attention.mean(dim=1)


class ZeroShotInferer(Inferer):
    """Zero-shot classification and grounding with a :class:`~medslip_monai.networks.MeDSLIP` network.

    ``inferer(image, network) -> {"probs": [B, N], "maps": [B, N, h, w]}`` for the ``N`` pathology entities named in
    ``entities``: the softmax existence probability of each entity's query and its grounding map.
    """

    def __init__(self, entities: Sequence[str]) -> None:
        super().__init__()
        self.indices = [pathology_index(name) for name in entities]

    def __call__(self, inputs: torch.Tensor, network: nn.Module, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        outputs = network(inputs, return_attention=True)
        probs = torch.softmax(outputs["pathology_logits"][:, self.indices].float(), dim=-1)[..., 1]
        return {"probs": probs, "maps": grounding_maps(outputs["pathology_attention"][:, :, self.indices])}


def zero_shot_scores(output: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluator output -> ``(probabilities [B, N], labels [B, N])`` for ROC-AUC metrics."""
    return output["pred"]["probs"], output["label"]["label"]


def grounding_pairs(output: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluator output -> ``(maps [B, N, h, w], masks [B, N, H, W])``: maps against the decoded ``labelmap``."""
    return output["pred"]["maps"], output["label"]["labelmap"]


def grounding_box_pairs(output: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluator output -> ``(maps [B, N, h, w], boxes [B, N, H, W])``: maps against the decoded ``boxmap``."""
    return output["pred"]["maps"], output["label"]["boxmap"]


def training_scalars(output: dict) -> dict[str, float]:
    """Trainer output -> total loss, loss terms and learning rate as floats, for Stats/TensorBoard handlers."""
    return {
        key: float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
        for key, value in output.items()
        if key in ("loss", "lr") or key.startswith("loss/")
    }


def weight_decay_groups(
    network: nn.Module, weight_decay: float, lr_scales: dict[str, float] | None = None, lr: float | None = None
) -> list[dict]:
    """Parameter groups with weight decay on weight matrices and kernels only (not biases or norm parameters).

    ``lr_scales`` (``{"trunk": 0.1}``) gives the parameters under a submodule a learning rate of ``lr`` times the
    scale (discriminative fine-tuning: a pre-trained encoder moves slower than a new decoder).
    """
    scales = dict(lr_scales or {})
    if scales and lr is None:
        raise ValueError("lr_scales needs the base learning rate lr")
    groups: dict[tuple[float, bool], list] = {}
    for name, parameter in network.named_parameters():
        if parameter.requires_grad:
            scale = next((v for prefix, v in scales.items() if name == prefix or name.startswith(prefix + ".")), 1.0)
            groups.setdefault((scale, parameter.ndim > 1), []).append(parameter)
    result = []
    for (scale, decays), parameters in sorted(groups.items(), key=lambda item: (-item[0][0], not item[0][1])):
        group = {"params": parameters, "weight_decay": weight_decay if decays else 0.0}
        if scales:
            group["lr"] = lr * scale
        result.append(group)
    return result
