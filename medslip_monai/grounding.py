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
"""Grounding maps and heat maps: the one place where MeDSLIP's "where" is built.

* :func:`grounding_maps`: decoder cross-attention -> one map per query on the token grid (the official construction:
  attention averaged over heads, then over decoder layers).
* :func:`heat_maps`: token-grid maps -> heat maps in [0, 1] at image size, in one of two constructions (``HEATMAPS``):
  ``"medslip"`` (bilinear upsampling, each map min-max scaled on its own) or ``"official"`` (the released grounding
  script's: nearest-neighbour upsampling of maps already divided by their batch maximum with
  :func:`scale_by_batch_maximum`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.transforms.utils import rescale_array
from monai.utils import look_up_option

__all__ = ["HEATMAPS", "grounding_maps", "heat_maps", "scale_by_batch_maximum"]

#: Heat-map constructions: ``"medslip"`` (ours) and ``"official"`` (the released grounding script's).
HEATMAPS = ("medslip", "official")


def grounding_maps(attention: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """Head-averaged cross-attention of every decoder layer ``[B, L, Q, h * w]`` -> maps ``[B, Q, h, w]``: each
    query's attention over the image tokens, averaged over the layers."""
    return attention.mean(dim=1).unflatten(-1, tuple(grid))


def scale_by_batch_maximum(maps: torch.Tensor) -> torch.Tensor:
    """The released grounding script's scaling: maps ``[B, K, h, w]`` divided by each finding's largest value in the
    batch (over images and tokens), so the batch's strongest response is 1."""
    return maps / maps.amax(dim=(0, 2, 3), keepdim=True).clamp(min=1e-12)


def heat_maps(maps: torch.Tensor, size: Sequence[int], heatmap: str = "medslip") -> torch.Tensor:
    """Token-grid maps ``[M, h, w]`` -> heat maps ``[M, H, W]`` in [0, 1] at ``size = (H, W)``.

    Args:
        maps: grounding maps (for ``"official"``, already scaled by :func:`scale_by_batch_maximum`).
        size: output rows and columns.
        heatmap: ``"medslip"`` (bilinear, each map min-max scaled; a flat map gives zeros) or ``"official"``
            (nearest-neighbour repetition, clipped to [0, 1]).
    """
    heatmap = look_up_option(heatmap, HEATMAPS)
    mode = {"mode": "nearest"} if heatmap == "official" else {"mode": "bilinear", "align_corners": False}
    up = F.interpolate(maps[:, None].float(), size=tuple(size), **mode)[:, 0]
    if heatmap == "official":
        return up.clamp(0, 1)
    return torch.stack([rescale_array(one, 0.0, 1.0) for one in up]) if len(up) else up
