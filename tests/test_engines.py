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
"""Engine pieces: batch preparation, the prediction inferer, handlers and datalists."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events

from medslip_monai.data import build_dataset, load_datalist
from medslip_monai.engines import (
    GroundingPanel,
    MetricsWriter,
    PredictionInferer,
    PrepareImageAndTargets,
    latest_checkpoint,
    weight_decay_groups,
)
from medslip_monai.networks import MeDSLIP
from medslip_monai.text import EntityBooks


def test_prepare_batch_moves_image_and_named_targets():
    batch = {"image": torch.zeros(2, 3, 4, 4), "matrix": torch.zeros(2, 51, 75), "other": [1, 2]}
    image, targets = PrepareImageAndTargets(["matrix", "absent"])(batch, torch.device("cpu"))
    assert image.shape == (2, 3, 4, 4) and list(targets) == ["matrix"]


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    return MeDSLIP(EntityBooks(torch.randn(75, 32), torch.randn(51, 32)), backbone="resnet10").eval()


def test_prediction_inferer_keeps_the_chosen_outputs_of_predict(network):
    image = torch.randn(2, 3, 64, 64)
    out = PredictionInferer([10, 3])(image, network)
    full = network.predict(image)
    assert out.probabilities.shape == (2, 2) and out.maps.shape == (2, 2, 4, 4) and out.locations.shape == (2, 2, 51)
    torch.testing.assert_close(out.probabilities, full.probabilities[:, [10, 3]], rtol=0, atol=0)
    torch.testing.assert_close(out.maps, full.maps[:, [10, 3]], rtol=0, atol=0)


def test_prediction_inferer_official_maps_peak_at_one_per_finding(network):
    out = PredictionInferer([10, 3], heatmap="official")(torch.randn(3, 3, 64, 64), network)
    torch.testing.assert_close(out.maps.amax((0, 2, 3)), torch.ones(2))


def test_grounding_panel_shows_findings_present_in_the_batch(network):
    image = torch.randn(2, 3, 64, 64)
    labels = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    output = {"image": image, "pred": network.predict(image).select([0, 1]), "label": {"label": labels}}
    picture = GroundingPanel(["a", "b"])(output)
    assert picture.shape[:2] == (1, 3) and picture.shape[-1] == 384  # one panel: only "b" is present
    assert GroundingPanel(["a", "b"])({**output, "label": {"label": torch.zeros(2, 2)}}) == [None]


def test_weight_decay_groups_split_matrices_from_vectors():
    network = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    decay, no_decay = weight_decay_groups(network, 0.02)
    assert [p.shape for p in decay["params"]] == [torch.Size([3, 4])]
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0


def test_latest_checkpoint(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    for epoch in (2, 10, 9):
        (tmp_path / f"checkpoint_epoch={epoch}.pt").write_bytes(b"")
    assert latest_checkpoint(tmp_path).name == "checkpoint_epoch=10.pt"


def test_metrics_writer_keeps_best_and_last(tmp_path):
    engine = Engine(lambda e, b: None)
    engine.data_loader = [0, 1, 2]
    scores = iter([0.7, 0.9, 0.8])

    @engine.on(Events.EPOCH_COMPLETED)
    def fake_metrics(e):
        value = next(scores)
        e.state.metrics = {"val_mean_auc": value, "auc/effusion": value, "pointing_game/mean": float("nan")}
        if value >= max(0.0, getattr(e.state, "best_metric", 0.0)):
            e.state.best_metric, e.state.best_metric_epoch = value, e.state.epoch

    writer = MetricsWriter(tmp_path, config={"backbone": "resnet18"})
    writer.attach(engine)
    for _ in range(3):
        engine.run([0], max_epochs=engine.state.max_epochs + 1 if engine.state.max_epochs else 1)
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert result["epoch"] == 2 and result["metrics"]["auc"]["effusion"] == 0.9
    assert result["last"]["metrics"]["val_mean_auc"] == 0.8 and result["metrics"]["pointing_game"]["mean"] is None
    assert result["config"] == {"backbone": "resnet18"} and result["num_images"] is None
    assert "| auc/effusion | 0.9000 | 0.8000 |" in (tmp_path / "metrics.md").read_text()


def test_load_datalist_resolves_and_reports_missing(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    datalist = tmp_path / "list.json"
    datalist.write_text(json.dumps({"training": [{"image": "a.png", "mask": "gone.png", "label": [1, 0]}]}))
    with pytest.raises(FileNotFoundError, match="gone.png"):
        load_datalist(datalist)
    items = load_datalist(datalist, check_files=False)
    assert items[0]["image"] == str(tmp_path / "a.png") and items[0]["label"] == [1, 0]
    with pytest.raises(KeyError, match="no 'validation' list"):
        load_datalist(datalist, "validation")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_datalist(tmp_path / "broken.json")


@pytest.mark.parametrize("kind", ["Dataset", "CacheDataset", "PersistentDataset"])
def test_build_dataset_kinds(tmp_path, kind):
    data = [{"x": np.float32(i)} for i in range(3)]
    dataset = build_dataset(data, lambda d: {"x": d["x"] * 2}, kind, cache_dir=tmp_path)
    assert type(dataset).__name__ == kind and [d["x"] for d in dataset] == [0, 2, 4]
