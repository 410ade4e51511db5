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
"""multi_gpu_train.json under torchrun with two CPU processes (gloo)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from monai.bundle import ConfigParser

from medslip_monai.networks import MeDSLIP
from tests.conftest import BUNDLE, TINY

CONFIGS = [str(BUNDLE / "configs" / "train.json"), str(BUNDLE / "configs" / "multi_gpu_train.json")]
#: Two epochs on a tiny world whose 33 validation images split 17 / 16 between the ranks: uneven shards and batch
#: counts, which the validation of a DDP run must survive.
OVERRIDES = {**TINY, "epochs": 2, "synthetic#num": 64, "synthetic#num_val": 33}
ARGUMENTS = [text for key, value in OVERRIDES.items() for text in (f"--{key}", str(value))]


@pytest.mark.slow
def test_two_process_ddp_training_writes_once_and_its_weights_load_in_one_process(tmp_path):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        json.dumps(CONFIGS),
        "--meta_file",
        str(BUNDLE / "configs" / "metadata.json"),
        "--bundle_root",
        str(tmp_path),
        *ARGUMENTS,
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]

    checkpoint = torch.load(tmp_path / "models" / "checkpoints" / "checkpoint_epoch=2.pt", weights_only=True)
    assert checkpoint["trainer"]["iteration"] == 4  # 64 images, batch 16, two ranks: 2 iterations per epoch each
    network = MeDSLIP(text_dim=384, backbone="resnet10")
    network.load_state_dict(checkpoint["network"])  # strict: no "module." prefix from DDP
    network.load_state_dict(torch.load(tmp_path / "models" / "model.pt", weights_only=True))
    assert len(list((tmp_path / "eval" / "tensorboard").iterdir())) == 1  # rank 0 only
    assert not (tmp_path / "runs").exists()

    # the metrics reduced over both ranks equal a single-process evaluation of the same weights
    record = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    distributed = record["last"]["metrics"] if "last" in record else record["metrics"]
    assert record["num_images"] == 33
    parser = ConfigParser()
    parser.read_config(CONFIGS[0])
    parser.update({"bundle_root": str(tmp_path), "backbone": "resnet10", "image_size": 64, "dataset_type": "Dataset"})
    parser["validate"]["handlers"] = []
    single = parser.get_parsed_content("network")
    single.load_state_dict(checkpoint["network"])
    evaluator = parser.get_parsed_content("validate#evaluator")
    evaluator.run()
    compared = 0
    for key, value in evaluator.state.metrics.items():
        group, _, name = key.partition("/")
        if not name or group not in distributed or not isinstance(distributed[group], dict):
            continue
        expected = distributed[group][name]
        if expected is None:
            assert math.isnan(value), key
        else:
            assert abs(value - expected) < 1e-6, (key, value, expected)
        compared += 1
    assert compared >= 4 * 8  # AUC and three pointing games, seven findings and their mean each
