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
"""Metrics (medslip_monai.metrics): pointing game, per-finding AUC, split-level classification and grounding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medslip_monai.metrics import (
    FindingAUC,
    PointingGame,
    classification_metrics,
    grounding_metrics,
    pointing_hits,
    region_scores,
)


def _peaks(*cells: tuple[int, int, int]) -> torch.Tensor:
    """Maps ``[1, N, 4, 4]`` with value 1 at (finding, row, column) cells, 0 elsewhere."""
    maps = torch.zeros(1, max(c[0] for c in cells) + 1, 4, 4)
    for finding, row, column in cells:
        maps[0, finding, row, column] = 1.0
    return maps


TOP_LEFT = torch.zeros(1, 1, 16, 16)
TOP_LEFT[..., :4, :4] = 1


@pytest.mark.parametrize(
    "maps, mode, hit",
    [
        (_peaks((0, 0, 0)), "patch", True),  # the peak token's patch is the region
        (_peaks((0, 3, 3)), "patch", False),
        (torch.zeros(1, 1, 4, 4), "patch", True),  # a flat map: every token ties, one touches (released rule)
        (_peaks((0, 0, 0), (0, 3, 3)), "patch", True),  # two tied peaks, one inside
        (torch.zeros(1, 1, 4, 4), "pixel", True),  # strict rule: the first maximal pixel is top-left
        (_peaks((0, 3, 3)), "pixel", False),
    ],
)
def test_pointing_hits(maps, mode, hit):
    hits, valid = pointing_hits(maps, TOP_LEFT, mode=mode)
    assert hits.tolist() == [[hit]] and valid.tolist() == [[True]]


def test_pointing_game_counts_only_present_findings():
    maps = _peaks((0, 0, 0), (1, 3, 3))
    masks = TOP_LEFT.expand(1, 2, 16, 16)
    metric = PointingGame(["a", "b"])
    metric.reset()
    metric.update((maps, masks))
    metric.update((maps, torch.zeros_like(masks)))  # empty masks do not count
    result = metric.compute()
    assert result == {"pointing_game/a": 1.0, "pointing_game/b": 0.0, "pointing_game/mean": 0.5}


def test_finding_auc_is_nan_for_one_class_labels():
    metric = FindingAUC(["a", "b", "c"])
    metric.reset()
    probs = torch.tensor([[0.9, 0.2, 0.5], [0.1, 0.8, 0.5], [0.8, 0.3, 0.5], [0.2, 0.7, 0.5]])
    labels = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=torch.float32)
    metric.update((probs, labels))
    result = metric.compute()
    assert result["auc/a"] == 1.0 and result["auc/b"] == 0.5 and math.isnan(result["auc/c"])
    assert result["auc/mean"] == pytest.approx(0.75)


def test_thresholds_come_from_validation_and_intervals_bracket_the_estimate():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (400, 2))
    probs = np.clip(labels * 0.3 + rng.normal(0.4, 0.15, labels.shape), 0, 1)
    shifted = np.clip(probs + 0.2, 0, 1)  # test scores are shifted: a test-chosen threshold would differ
    result = classification_metrics((probs, labels), (shifted, labels), ["a", "b"], bootstrap=200)
    assert result["a"]["threshold"] < 0.75 and result["a"]["auc"] > 0.85
    for name in ("a", "b", "mean"):
        low, high = result[name]["auc_ci95"]
        assert low <= result[name]["auc"] <= high and high - low < 0.1


def test_region_scores_of_a_half_covered_region():
    truth = torch.zeros(1, 4, 4, dtype=torch.bool)
    truth[0, :2] = True  # 8 pixels
    heat = torch.zeros(1, 4, 4)
    heat[0, :1] = 1.0  # 4 pixels predicted, all inside
    scores = {name: float(value) for name, value in region_scores(heat, truth, 0.5).items()}
    assert scores == {"recall": 0.5, "precision": 1.0, "iou": 0.5, "dice": pytest.approx(2 / 3)}


def _items(maps: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return maps, truth > 0.5, torch.zeros(len(maps), dtype=torch.long)


@pytest.fixture(scope="module")
def regions():
    """20 items with a 16-pixel square region and a map peaking on the tokens centred on it (token (i, j) looks at
    pixel (8 i, 8 j), see ``grounding.upsample_tokens``)."""
    truth = torch.zeros(20, 64, 64)
    maps = torch.rand(20, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.1
    for n in range(20):
        r, c = 1 + n % 6, 1 + (n * 5) % 6
        truth[n, 8 * r - 4 : 8 * r + 12, 8 * c - 4 : 8 * c + 12] = 1
        maps[n, r : r + 2, c : c + 2] = 1.0
    return maps, truth


def test_grounding_metrics_reward_maps_on_the_region(regions):
    maps, truth = regions
    good = grounding_metrics(_items(maps, truth), _items(maps, truth), ["x"], bootstrap=50)
    assert good["mean"]["pointing_game"] == 1.0 and good["mean"]["dice"] > 0.8 and good["mean"]["recall"] > 0.9
    bad = grounding_metrics(_items(maps, truth), _items(maps.flip(-1).flip(-2), truth), ["x"], bootstrap=0)
    assert bad["mean"]["dice"] < good["mean"]["dice"] - 0.3


def test_grounding_metrics_with_official_heat_maps(regions):
    maps, truth = regions
    official = grounding_metrics(_items(maps, truth), _items(maps, truth), ["x"], heatmap="official", bootstrap=0)
    assert official["heatmap"] == "official" and official["mean"]["pointing_game"] == 1.0
    assert official["x"]["threshold"] in (0.0, *np.round(np.linspace(0.05, 0.95, 19), 2))
