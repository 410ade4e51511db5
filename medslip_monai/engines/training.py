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
"""Training pieces for MONAI's ``SupervisedTrainer``: batch preparation, optimiser groups, logged scalars."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.engines import PrepareBatch
from torch import nn

__all__ = ["PrepareImageAndTargets", "training_scalars", "weight_decay_groups"]


class PrepareImageAndTargets(PrepareBatch):
    """``batch -> (image, {key: tensor})``: the image and a dict of the named target tensors, moved to the device.

    A batch whose items were all skipped (``data.collate_loaded``) has no image: with ``allow_empty`` (batch jobs
    that report skipped files) it becomes an empty image tensor, which :class:`~medslip_monai.engines
    .PredictionInferer` turns into no prediction; otherwise it raises ``ValueError``.

    Args:
        target_keys: batch keys gathered into the targets dict; keys absent from a batch are skipped.
        image_key: the network input. Defaults to ``"image"``.
        allow_empty: accept batches of skipped items only. Defaults to False.
    """

    def __init__(self, target_keys: Sequence[str], image_key: str = "image", allow_empty: bool = False) -> None:
        self.target_keys = tuple(target_keys)
        self.image_key = image_key
        self.allow_empty = allow_empty

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

        if self.image_key not in batchdata:
            if not self.allow_empty:
                raise ValueError("every item of a batch was skipped as unreadable; see the warnings above")
            return torch.empty(0, device=device), {}
        targets = {key: move(batchdata[key]) for key in self.target_keys if key in batchdata}
        return move(batchdata[self.image_key]), targets


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
