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
"""Grounding maps and heat maps (medslip_monai.grounding) and the pictures drawn from them (medslip_monai.visualize)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medslip_monai.grounding import grounding_maps, heat_maps, scale_by_batch_maximum
from medslip_monai.visualize import captioned_panels, heat_overlay, outline


def test_grounding_maps_average_the_layers_on_the_token_grid():
    attention = torch.rand(2, 4, 3, 12)  # [B, L, Q, h * w]
    maps = grounding_maps(attention, (3, 4))
    assert maps.shape == (2, 3, 3, 4)
    torch.testing.assert_close(maps[1, 2, 0, :], attention[1, :, 2, :4].mean(0))


def test_official_scaling_divides_each_finding_by_its_batch_maximum():
    maps = torch.tensor([[[[1.0, 2.0]], [[4.0, 1.0]]], [[[0.5, 0.5]], [[8.0, 2.0]]]])  # [B=2, K=2, 1, 2]
    scaled = scale_by_batch_maximum(maps)
    assert scaled[:, 0].max() == 1.0 and scaled[:, 1].max() == 1.0
    torch.testing.assert_close(scaled[0, 0, 0], torch.tensor([0.5, 1.0]))
    torch.testing.assert_close(scaled[1, 1, 0], torch.tensor([1.0, 0.25]))


@pytest.mark.parametrize("heatmap", ["medslip", "official"])
def test_heat_maps_reach_image_size_in_unit_range(heatmap):
    maps = torch.rand(3, 4, 4) * 0.8
    heat = heat_maps(maps, (32, 40), heatmap)
    assert heat.shape == (3, 32, 40) and heat.min() >= 0 and heat.max() <= 1
    if heatmap == "medslip":  # each map stretched to [0, 1]
        torch.testing.assert_close(heat.amax((1, 2)), torch.ones(3))
    else:  # nearest-neighbour blocks of the values as given
        torch.testing.assert_close(heat[:, ::8, ::10], maps)


def test_a_flat_map_gives_a_zero_heat_map():
    assert float(heat_maps(torch.full((1, 4, 4), 0.3), (8, 8)).abs().max()) == 0.0


def test_overlay_leaves_the_radiograph_where_the_heat_is_low():
    image = torch.linspace(0, 1, 64).repeat(3, 64, 1)  # a ramp, the same in every channel
    heat = torch.zeros(64, 64)
    heat[:16, :16] = 1.0
    overlay = heat_overlay(image, heat)
    assert overlay.shape == (3, 64, 64) and overlay.min() >= 0 and overlay.max() <= 1
    torch.testing.assert_close(overlay[:, 32:, 32:], image[:, 32:, 32:])  # no heat: the grey image unchanged
    assert (overlay[:, :16, :16] - image[:, :16, :16]).abs().max() > 0.2  # heat: coloured


def test_outline_is_the_ring_around_a_region():
    region = torch.zeros(8, 8, dtype=torch.bool)
    region[2:5, 2:5] = True
    ring = outline(region)
    assert int(ring.sum()) == 5 * 5 - 3 * 3 and not (ring & region).any()


def test_panels_are_side_by_side_with_captions_below():
    picture = torch.rand(3, 100, 100)
    canvas = captioned_panels([(picture, ["input"]), (picture, ["effusion 0.91", "left costophrenic 0.80"])])
    side = 384  # panels are at least 384 pixels wide, so captions stay legible
    assert canvas.width == 2 * side and canvas.height > side
    band = np.asarray(canvas)[side:, :, :]
    assert (band < 128).any()  # dark caption text on the white band
