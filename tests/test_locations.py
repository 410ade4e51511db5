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
"""Locations: side and zone from the map's geometry combined with the learned structure; a map that points nowhere
gives no location, and every output says so."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow
from PIL import Image

from medslip_monai.locations import NO_LOCATION, map_geometry, place_distribution, places_text, top_places
from medslip_monai.networks import MeDSLIP
from medslip_monai.vocab import ANATOMIES, NON_LOCATIONS
from tests.test_image_input import picture
from tests.test_inference import CONFIG, _books

PLACES = [name not in NON_LOCATIONS for name in ANATOMIES]


def _map(rows: slice, columns: slice, size: int = 8) -> torch.Tensor:
    grid = torch.full((size, size), 0.01)
    grid[rows, columns] = 1.0
    return grid / grid.sum()


def test_geometry_reads_side_and_zone_in_the_radiological_convention():
    image_left_low = _map(slice(6, 8), slice(1, 3))  # the patient's right, lower zone
    image_right_high = _map(slice(1, 3), slice(5, 7))
    p_right, zones, defined = map_geometry(torch.stack([image_left_low, image_right_high])[None])
    assert defined.all() and p_right[0, 0] > 0.9 and p_right[0, 1] < 0.1
    assert zones[0, 0].argmax() == 2 and zones[0, 1].argmax() == 0
    torch.testing.assert_close(zones.sum(-1), torch.ones(1, 2))


def test_the_peak_decides_the_side_over_a_broad_low_plateau():
    grid = torch.zeros(8, 8)
    grid[:, 4:] = 0.3  # a plateau over the patient's left, 32 tokens
    grid[6:8, 1] = 1.0  # the peak on the patient's right, 2 tokens: less mass than the plateau
    p_right, _, defined = map_geometry(grid[None, None])
    assert defined.all() and float(grid[:, :4].sum()) < float(grid[:, 4:].sum()) and p_right[0, 0] > 0.8


def test_places_split_a_structure_between_sides_by_the_map():
    structure = torch.zeros(1, 1, len(ANATOMIES))
    structure[..., ANATOMIES.index("left_costophrenic")] = 5.0  # the structure says "a costophrenic angle"
    structure[..., ANATOMIES.index("right_costophrenic")] = 5.0
    on_patients_right = _map(slice(6, 8), slice(0, 3))[None, None]
    on_patients_left = _map(slice(6, 8), slice(5, 8))[None, None]
    right = top_places(place_distribution(structure, on_patients_right)[0, 0])
    left = top_places(place_distribution(structure, on_patients_left)[0, 0])
    assert right[0][0] == "right_costophrenic" and left[0][0] == "left_costophrenic"
    located = place_distribution(torch.randn(2, 3, len(ANATOMIES)), torch.rand(2, 3, 8, 8))
    torch.testing.assert_close(located.sum(-1), torch.ones(2, 3))
    assert float(located[..., ~torch.tensor(PLACES)].abs().max()) == 0


@pytest.mark.parametrize("value", [0.25, float("nan"), float("inf")])
def test_a_map_that_points_nowhere_gives_no_location(value):
    maps = torch.stack([torch.full((8, 8), value), torch.rand(8, 8)])[None]
    p_right, zones, defined = map_geometry(maps)
    assert defined.tolist() == [[False, True]]
    located = place_distribution(torch.randn(1, 2, len(ANATOMIES)), maps)
    assert float(located[0, 0].abs().sum()) == 0 and torch.isfinite(located).all()
    assert top_places(located[0, 0]) == [] and places_text([]) == NO_LOCATION
    assert len(top_places(located[0, 1])) == 3


def test_inference_outputs_say_no_location_for_a_flat_map(tmp_path):
    """Weights whose pathology cross-attention is uniform (queries and keys zeroed): every map is flat."""
    torch.manual_seed(0)
    network = MeDSLIP(_books(), backbone="resnet10")
    with torch.no_grad():
        for layer in network.pathology_decoder.layers:
            layer.cross_attn.in_proj_weight[:512].zero_()
            layer.cross_attn.in_proj_bias[:512].zero_()
    root = tmp_path / "bundle"
    (root / "models").mkdir(parents=True)
    torch.save(network.state_dict(), root / "models" / "model.pt")
    (root / "images").mkdir()
    Image.fromarray(picture(255).astype(np.uint8)).save(root / "images" / "grey.png")
    workflow = ConfigWorkflow(
        config_file=str(CONFIG),
        workflow_type="infer",
        bundle_root=str(root),
        input=str(root / "images"),
        output_dir=str(tmp_path / "out"),
        findings=["effusion", "nodule"],
        threshold=0.0,
        image_size=64,
        num_workers=0,
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    row = json.loads((tmp_path / "out" / "findings.json").read_text())["images"][0]
    assert row["where"] == {"effusion": [], "nodule": []} and row["no_location"] == ["effusion", "nodule"]
    with open(tmp_path / "out" / "findings.csv") as handle:
        where = list(csv.reader(handle))[1][-1]
    assert where == f"effusion: {NO_LOCATION} | nodule: {NO_LOCATION}"
