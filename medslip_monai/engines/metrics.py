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
"""Ignite metrics for zero-shot evaluation: per-finding ROC-AUC and the pointing game of grounding maps."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ignite.distributed as idist
import numpy as np
import torch
import torch.nn.functional as F
from ignite.metrics import Metric
from monai.metrics import compute_roc_auc
from monai.utils import evenly_divisible_all_gather, look_up_option

__all__ = ["FindingAUC", "PointingGame", "pointing_hits", "POINTING_MODES"]


class FindingAUC(Metric):
    """ROC-AUC of each finding and their mean over the findings whose labels hold both classes.

    ``output_transform`` must give ``(probabilities [B, N], labels [B, N])``. The result is a mapping
    ``{"auc/<finding>": value, "auc/mean": value}``; a finding whose labels are all one class scores NaN.
    Under ``torch.distributed`` every rank's scores are gathered first (ranks may hold different numbers of images).
    """

    def __init__(self, class_names: Sequence[str], output_transform: Callable = lambda x: x) -> None:
        self.class_names = list(class_names)
        super().__init__(output_transform=output_transform)

    def reset(self) -> None:
        self._probs: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    def update(self, output: tuple[torch.Tensor, torch.Tensor]) -> None:
        probs, labels = output
        self._probs.append(probs.detach().float().cpu())
        self._labels.append(labels.detach().float().cpu())

    def compute(self) -> dict[str, float]:
        probs, labels = torch.cat(self._probs), torch.cat(self._labels)
        if idist.get_world_size() > 1:
            device = idist.device()
            probs = evenly_divisible_all_gather(probs.to(device)).cpu()
            labels = evenly_divisible_all_gather(labels.to(device)).cpu()
        values = {}
        for k, name in enumerate(self.class_names):
            column = labels[:, k]
            both = bool((column == 0).any() and (column == 1).any())
            values[f"auc/{name}"] = float(compute_roc_auc(probs[:, k], column)) if both else float("nan")
        scores = [v for v in values.values() if not np.isnan(v)]
        values["auc/mean"] = float(np.mean(scores)) if scores else float("nan")
        return values


POINTING_MODES = ("patch", "pixel")


def pointing_hits(maps: torch.Tensor, masks: torch.Tensor, mode: str = "patch") -> tuple[torch.Tensor, torch.Tensor]:
    """Pointing game per (image, finding).

    Args:
        maps: grounding maps ``[B, N, h, w]`` on the token grid.
        masks: ground-truth masks ``[B, N, H, W]`` (H, W multiples of h, w in ``"patch"`` mode).
        mode: ``"patch"`` (the official MeDSLIP/MedKLIP rule: the map is upsampled by nearest-neighbour repetition
            and a hit is any maximal pixel inside the region, i.e. the peak token's image patch touches the region)
            or ``"pixel"`` (stricter: the peak of the bilinearly upsampled map lies inside the region).

    Returns:
        ``hits [B, N]`` and ``valid [B, N]`` (the mask is not empty).
    """
    mode = look_up_option(mode, POINTING_MODES)
    inside = masks.float() > 0.5
    valid = inside.flatten(2).any(-1)
    if mode == "patch":
        touched = F.adaptive_max_pool2d(inside.float(), maps.shape[-2:]) > 0.5  # per token: patch meets region
        peak = maps.float().flatten(2).argmax(-1, keepdim=True)
        return touched.flatten(2).gather(-1, peak).squeeze(-1), valid
    upsampled = F.interpolate(maps.float(), size=masks.shape[-2:], mode="bilinear", align_corners=False)
    peak = upsampled.flatten(2).argmax(-1, keepdim=True)
    return inside.flatten(2).gather(-1, peak).squeeze(-1), valid


class PointingGame(Metric):
    """Pointing-game hit rate of grounding maps against masks, per finding and overall.

    ``output_transform`` must give ``(maps [B, N, h, w], masks [B, N, H, W])``. The result is a mapping
    ``{"<prefix>/<finding>": value, "<prefix>/mean": overall}``; findings never present score NaN. Hits and counts
    are summed over the ranks of a ``torch.distributed`` run.

    Args:
        class_names: the findings, in output order.
        mode: ``"patch"`` (official rule) or ``"pixel"`` (strict), see :func:`pointing_hits`.
        prefix: name of the metric in the result keys. Defaults to ``"pointing_game"``.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        output_transform: Callable = lambda x: x,
        mode: str = "patch",
        prefix: str = "pointing_game",
    ) -> None:
        self.class_names = list(class_names)
        self.mode = mode
        self.prefix = prefix
        super().__init__(output_transform=output_transform)

    def reset(self) -> None:
        self._hits = torch.zeros(len(self.class_names), dtype=torch.float64)
        self._counts = torch.zeros(len(self.class_names), dtype=torch.float64)

    def update(self, output: tuple[torch.Tensor, torch.Tensor]) -> None:
        hits, valid = pointing_hits(*output, mode=self.mode)
        self._hits += (hits & valid).sum(0).double().cpu()
        self._counts += valid.sum(0).double().cpu()

    def compute(self) -> dict[str, float]:
        hits, counts = self._hits, self._counts
        if idist.get_world_size() > 1:
            device = idist.device()
            hits, counts = idist.all_reduce(hits.to(device)).cpu(), idist.all_reduce(counts.to(device)).cpu()
        values = {
            f"{self.prefix}/{name}": float(h / c) if c > 0 else float("nan")
            for name, h, c in zip(self.class_names, hits, counts)
        }
        total = float(counts.sum())
        values[f"{self.prefix}/mean"] = float(hits.sum()) / total if total > 0 else float("nan")
        return values
