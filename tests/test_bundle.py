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
"""The bundle's configs on tiny data: MONAI's property checks, and each config runs end to end and writes its files."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from monai.bundle import ConfigWorkflow

from medslip_monai.data.synthetic import ensure_world
from tests.conftest import BUNDLE, TINY, run_config


def train_workflow(bundle_root: Path, **overrides) -> ConfigWorkflow:
    return ConfigWorkflow(
        config_file=str(BUNDLE / "configs" / "train.json"),
        meta_file=str(BUNDLE / "configs" / "metadata.json"),
        logging_file=str(BUNDLE / "configs" / "logging.conf"),
        workflow_type="train",
        bundle_root=str(bundle_root),
        **overrides,
    )


def test_train_config_has_the_train_properties(tmp_path):
    workflow = train_workflow(tmp_path, **TINY)
    workflow.initialize()
    assert workflow.check_properties() == []
    assert type(workflow.trainer).__name__ == "SupervisedTrainer"
    assert type(workflow.evaluator).__name__ == "SupervisedEvaluator"
    defaults = json.loads((BUNDLE / "configs" / "train.json").read_text())
    assert workflow.val_interval == defaults["val_interval"] and workflow.max_epochs == defaults["epochs"]
    assert (tmp_path / "data" / "synthetic_cxr" / "world.json").is_file()  # generated because it was missing
    workflow.finalize()


def test_metadata_describes_the_network_output():
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    train = json.loads((BUNDLE / "configs" / "train.json").read_text())
    image = meta["network_data_format"]["inputs"]["image"]
    assert image["spatial_shape"] == [train["image_size"]] * 2 and image["num_channels"] == 3
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 75


def test_pretraining_runs_from_a_datalist_built_by_the_reports_command(tmp_path):
    """A CSV of images and free-text reports -> ``python -m medslip_monai.reports csv`` -> train.json trains on it
    (validation stays on the labelled synthetic split)."""
    world = Path(ensure_world(tmp_path / "data" / "synthetic_cxr", num=24, seed=0, num_val=8, size=64))
    truth = json.loads((world / "pretrain.json").read_text())["training"]
    with open(tmp_path / "corpus.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "report", "split"])
        writer.writerows([str(world / item["image"]), item["report"], "train"] for item in truth)
    datalist = tmp_path / "corpus" / "pretrain.json"
    command = [
        sys.executable,
        "-m",
        "medslip_monai.reports",
        "csv",
        "--csv",
        str(tmp_path / "corpus.csv"),
        "--out",
        str(datalist),
        "--quiet",
    ]
    summary = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    assert summary["reports"] == len(truth) and summary["problems"] == 0
    built = json.loads(datalist.read_text())["training"]
    assert [sorted(item["triplets"]) for item in built] == [sorted(item["triplets"]) for item in truth]

    workflow = train_workflow(
        tmp_path, **TINY, epochs=1, datalist=str(datalist), val_datalist=str(world / "pretrain.json")
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    assert workflow.trainer.state.iteration == len(truth) // 16  # the loader drops the last partial batch
    assert (tmp_path / "models" / "model.pt").is_file() and (tmp_path / "eval" / "metrics.json").is_file()


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> Path:
    """One epoch of pre-training on a tiny world: weights for the downstream configs to run on."""
    root = tmp_path_factory.mktemp("tiny_bundle")
    run_config("train.json", root, "train", **TINY, epochs=1)
    return root


def test_evaluate_config_writes_its_report(tiny_bundle):
    """evaluate.json (on inference.json) passes MONAI's infer property checks and writes metrics, ROC and overlays."""
    run_config(["inference.json", "evaluate.json"], tiny_bundle, "infer", num_workers=0, bootstrap=20, overlay_items=2)
    folder = tiny_bundle / "eval" / "zero_shot"
    report = json.loads((folder / "metrics.json").read_text())
    assert set(report["classification"]["mean"]) >= {"auc", "f1", "accuracy", "auc_ci95"}
    grounding = report["grounding"]
    assert 0 <= grounding["mean"]["pointing_game"] <= 1
    assert all(v["threshold"] > 0 for k, v in grounding.items() if isinstance(v, dict) and k != "mean")
    assert (folder / "roc.png").is_file() and len(list((folder / "overlays").glob("*.png"))) == 2
    assert "| mean |" in (folder / "metrics.md").read_text()


@pytest.mark.parametrize(
    "configs, metric",
    [
        (["finetune_classification.json"], "mean_auc"),
        (["finetune_classification.json", "finetune_segmentation.json"], "mean_dice"),
    ],
)
@pytest.mark.parametrize("pretrained", [True, False])
def test_fine_tuning_configs_select_on_validation_and_score_test(tiny_bundle, configs, metric, pretrained):
    """Each fine-tuning config passes the train property checks, keeps the best validation checkpoint and scores
    the test split once, from the pre-trained encoder or from random weights."""
    model = str(tiny_bundle / "models" / "model.pt") if pretrained else ""
    overrides = {"max_steps": 2, "batch_size": 4, "label_fraction": 0.5, "dataset_type": "Dataset"}
    run_config(configs, tiny_bundle, "train", num_workers=0, pretrained_model=model, **overrides)
    task = "finetune_" + configs[-1].removesuffix(".json").removeprefix("finetune_")
    run = ("pretrained" if pretrained else "random") + "_0.5"
    test = json.loads((tiny_bundle / "eval" / task / run / "metrics.json").read_text())
    assert metric in test["metrics"] and test["num_images"] == 8  # the test split
    validation = json.loads((tiny_bundle / "eval" / task / run / "validation" / "metrics.json").read_text())
    assert validation["config"]["label_fraction"] == 0.5
    assert (tiny_bundle / "models" / task / run / "model.pt").is_file()


def test_multi_gpu_override_has_the_train_properties(tmp_path, monkeypatch):
    """multi_gpu_train.json on train.json keeps every train property, checked in a one-process gloo group (two
    processes train with it under torchrun in test_distributed)."""
    import ignite.distributed as idist
    import torch.distributed as dist

    monkeypatch.setenv("LOCAL_RANK", "0")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        files = [str(BUNDLE / "configs" / name) for name in ("train.json", "multi_gpu_train.json")]
        workflow = ConfigWorkflow(config_file=files, workflow_type="train", bundle_root=str(tmp_path), **TINY)
        workflow.initialize()
        assert workflow.check_properties() == []
        assert type(workflow.parser.get_parsed_content("network")).__name__ == "DistributedDataParallel"
    finally:
        dist.destroy_process_group()
        idist.sync()  # Ignite's distributed helpers forget the group


def test_configs_share_one_preprocessing_factory_and_finding_list():
    """The preprocessing chain and the finding list are named in the plugin, not written out per config."""
    text = {path.name: path.read_text() for path in (BUNDLE / "configs").glob("*.json") if path.name != "metadata.json"}
    for name in ("train.json", "inference.json", "evaluate.json", "finetune_classification.json"):
        assert "medslip_monai.data.radiograph_transforms" in text[name], name
    for name, content in text.items():
        assert "NormalizeIntensityd" not in content and "0.485" not in content and '"effusion"' not in content, name
