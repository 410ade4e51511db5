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
  ``"medslip"`` (:func:`upsample_tokens`, each map min-max scaled on its own) or ``"official"`` (the released
  grounding script's: nearest-neighbour upsampling of maps already divided by their batch maximum with
  :func:`scale_by_batch_maximum`).

Where a token sits on the image: the ResNet trunk's padding (7 x 7 stem and 3 x 3 convolutions padded to keep their
centre, 1 x 1 strided shortcuts) centres token ``(i, j)``'s receptive field on network pixel ``(s i, s j)`` at token
stride ``s``: the top-left corner of the ``s x s`` patch the token is usually drawn on, not its middle (measured:
input-gradient centroids within 0.7 pixel of ``s i``, 7.5 pixels from the patch centre at stride 16). Drawing token
values on their patches moves every map half a token down and to the right; :func:`upsample_tokens` puts each value
where its token looks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.utils import look_up_option

__all__ = ["HEATMAPS", "grounding_maps", "heat_maps", "scale_by_batch_maximum", "upsample_tokens", "token_of_pixels"]

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


def token_of_pixels(size: int, tokens: int) -> torch.Tensor:
    """``[size]``: the token whose receptive field is centred nearest to each of ``size`` pixels along an axis of
    ``tokens`` tokens (token ``i`` centred at ``i * size / tokens``, see the module docstring)."""
    cell = size / tokens
    return torch.div(torch.arange(size) + 0.5 + cell / 2, cell, rounding_mode="floor").clamp(0, tokens - 1).long()


def upsample_tokens(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Token-grid maps ``[..., h, w]`` -> ``[..., H, W]``, bilinear between token centres placed where the tokens'
    receptive fields are centred (``(i * H / h, j * W / w)``, to within half a network pixel), constant beyond the
    outer centres."""
    h, w = maps.shape[-2:]
    height, width = (int(v) for v in size)

    def axis(pixels: int, tokens: int) -> torch.Tensor:  # pixel centres in token units -> grid_sample coordinates
        position = (torch.arange(pixels, dtype=torch.float32, device=maps.device) + 0.5) * tokens / pixels
        return 2 * position.clamp(max=tokens - 1) / max(tokens - 1, 1) - 1

    rows, columns = axis(height, h), axis(width, w)
    grid = torch.stack(torch.meshgrid(columns, rows, indexing="xy"), -1)  # [H, W, (x, y)]
    flat = maps.reshape(-1, 1, h, w).float()
    up = F.grid_sample(flat, grid.expand(len(flat), -1, -1, -1), mode="bilinear", align_corners=True)
    return up.reshape(*maps.shape[:-2], height, width)


def heat_maps(maps: torch.Tensor, size: Sequence[int], heatmap: str = "medslip") -> torch.Tensor:
    """Token-grid maps ``[M, h, w]`` -> heat maps ``[M, H, W]`` in [0, 1] at ``size = (H, W)``.

    Args:
        maps: grounding maps (for ``"official"``, already scaled by :func:`scale_by_batch_maximum`).
        size: output rows and columns.
        heatmap: ``"medslip"`` (:func:`upsample_tokens`, each map min-max scaled; a map whose tokens are all equal
            or not finite gives zeros) or
            ``"official"`` (nearest-neighbour repetition over each token's patch, clipped to [0, 1]).
    """
    heatmap = look_up_option(heatmap, HEATMAPS)
    if heatmap == "official":
        return F.interpolate(maps[:, None].float(), size=tuple(size), mode="nearest")[:, 0].clamp(0, 1)
    maps = maps.float()
    pointing = (maps.amax((-2, -1), keepdim=True) - maps.amin((-2, -1), keepdim=True)) > 0  # false: flat, not finite
    up = upsample_tokens(maps, size)
    low = up.amin((-2, -1), keepdim=True)
    scaled = (up - low) / (up.amax((-2, -1), keepdim=True) - low).clamp(min=1e-30)
    return torch.where(pointing, scaled.clamp(0, 1), torch.zeros_like(scaled))
