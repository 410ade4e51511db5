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
"""The synthetic chest X-ray world: determinism, ground truth consistency, reports, datalists and the command."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from medslip_monai.data import load_datalist, triplets_to_matrix
from medslip_monai.data.synthetic import FINDINGS, ensure_world, generate_world, render_case
from medslip_monai.data.synthetic.findings import FINDING_SPECS
from medslip_monai.vocab import ANATOMIES, PATHOLOGIES


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    description = generate_world(root, num=60, seed=5, num_val=30, num_test=20, size=128, workers=1)
    return root, description


def test_cases_are_deterministic_per_seed_and_index():
    a, b, c = render_case(1, 3, 96), render_case(1, 3, 96), render_case(2, 3, 96)
    assert np.array_equal(a["image"], b["image"]) and a["report"] == b["report"]
    assert not np.array_equal(a["image"], c["image"])


def test_findings_keep_their_bit_order():
    """Bit ``k`` of the label and box maps is finding ``k``: the order is part of the world."""
    assert FINDINGS == ("effusion", "pneumothorax", "consolidation", "nodule", "cardiomegaly", "edema", "atelectasis")


@pytest.mark.parametrize("finding", FINDINGS)
def test_each_finding_has_a_complete_spec(finding):
    """Prevalence, negations that deny it, instances, and sentences and an impression that state it."""
    spec = FINDING_SPECS[finding]
    assert spec.name == finding and 0 < spec.prevalence < 1
    assert spec.negations
    for _, triplets in spec.negations:
        assert [finding, 0] in [[p, v] for _, p, v in triplets]
        triplets_to_matrix(triplets)  # the official vocabulary
    rng = np.random.default_rng(0)
    for _ in range(20):
        instances = spec.sample(rng)
        assert instances
        for statement in (spec.sentence(instances, "positive", rng), spec.impression(instances)):
            _, triplets = statement
            assert [finding, 1] in [[p, v] for _, p, v in triplets], statement
            triplets_to_matrix(triplets)


def test_world_has_variety_and_every_finding():
    labels = np.array([render_case(0, i, 96)["labels"] for i in range(120)])
    prevalence = labels.mean(0)
    assert labels.shape[1] == len(FINDINGS) >= 6
    assert (prevalence > 0.08).all() and (prevalence < 0.45).all()
    assert (labels.sum(1) == 0).mean() > 0.1  # some normal studies


def test_findings_sit_at_their_anatomy(tmp_path):
    """Laterality is the radiological one: the patient's left is the image's right."""
    checked = 0
    for index in range(200):
        case = render_case(9, index, 128)
        for anatomy, pathology, value in case["triplets"]:
            if value != 1 or pathology not in case["masks"] or pathology in ("edema", "cardiomegaly"):
                continue
            if anatomy.startswith(("left", "right")) or "_left_" in anatomy or "_right_" in anatomy:
                columns = np.nonzero(case["masks"][pathology])[1]
                sides = {c < 64 for c in columns}
                if len(case["boxes"][pathology]) == 1:  # one lesion: it must lie on the named side
                    expected_image_left = "right" in anatomy
                    assert sides == {expected_image_left}, (index, anatomy, pathology)
                    checked += 1
    assert checked > 30


def test_reports_have_negation_uncertainty_and_truth(world):
    root, _ = world
    items = load_datalist(root / "pretrain.json", "training")
    reports = " ".join(item["report"] for item in items)
    assert "No " in reports and ("Possible" in reports or "Questionable" in reports or "possibly" in reports)
    assert "FINDINGS:" in reports and "IMPRESSION:" in reports
    for item in items:
        matrix = triplets_to_matrix(item["triplets"])  # every triplet uses the official vocabulary
        assert matrix.shape == (len(ANATOMIES), len(PATHOLOGIES))
        for _, pathology, value in item["triplets"]:
            if pathology in FINDINGS and value == 1:
                assert item["label"][FINDINGS.index(pathology)] == 1  # stated present => truly present
            if pathology in FINDINGS and value == 0:
                assert item["label"][FINDINGS.index(pathology)] == 0  # negated => truly absent


def test_datalists_masks_and_boxes(world):
    root, description = world
    assert description["counts"] == {"training": 60, "validation": 30, "test": 20}
    assert description["seeds"] == {"training": 5, "validation": 6, "test": 7}
    for name in ("pretrain", "classification", "grounding", "segmentation"):
        for split in ("training", "validation", "test"):
            load_datalist(root / f"{name}.json", split)  # raises if a referenced file is missing
    for item in load_datalist(root / "grounding.json", "validation"):
        mask = np.asarray(Image.open(item["mask"])) > 0
        x, y, w, h = item["boxes"][0]
        assert mask.any() and item["finding"] in FINDINGS
        assert mask[y : y + h, x : x + w].any()
    for item in load_datalist(root / "pretrain.json", "validation"):
        packed = np.asarray(Image.open(item["labelmap"]))
        present = [int(((packed >> bit) & 1).any()) for bit in range(len(FINDINGS))]
        assert present == item["label"]


def test_ensure_world_reuses_and_refuses(tmp_path, world):
    root, _ = world
    assert ensure_world(root, num=60, seed=5, num_val=30, num_test=20, size=128) == str(root)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="refusing"):
        ensure_world(stranger, num=10)


@pytest.fixture(scope="module")
def command(tmp_path_factory):
    """The command line run once: its output folder and completed process."""
    out = tmp_path_factory.mktemp("cli")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "medslip_monai.data.synthetic",
            "--out",
            str(out),
            "--num",
            "12",
            "--num-val",
            "6",
            "--seed",
            "3",
            "--size",
            "96",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out, result


def test_command_line(command):
    out, result = command
    summary = json.loads(result.stdout)
    assert summary["counts"]["training"] == 12 and summary["images_per_second"] > 0
    assert len(list((out / "images").glob("*.png"))) == 12 + 6 + 6


def test_command_line_prints_no_warning(command):
    """Run as a package with ``__main__``, runpy finds nothing imported twice and warns of nothing."""
    _, result = command
    assert "RuntimeWarning" not in result.stderr, result.stderr
