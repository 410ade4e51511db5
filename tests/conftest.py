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
"""Shared fixtures. ``pretrained_bundle`` is the pre-training learning run, computed once per test session and
read by every learning test (``tests/test_learning.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from monai.bundle import ConfigWorkflow

BUNDLE = Path(__file__).resolve().parents[1] / "bundle"
#: ``train.json`` overrides for a tiny world and network: enough to run every config end to end in seconds.
TINY = {
    "synthetic#num": 24,
    "synthetic#num_val": 8,
    "synthetic#size": 64,
    "backbone": "resnet10",
    "image_size": 64,
    "num_workers": 0,
    "dataset_type": "Dataset",
}


def run_config(names: str | list[str], bundle_root: Path, workflow_type: str, **overrides) -> ConfigWorkflow:
    """Run bundle config(s) (later files override earlier ones) with MONAI's workflow and property checks."""
    files = [str(BUNDLE / "configs" / name) for name in ([names] if isinstance(names, str) else names)]
    workflow = ConfigWorkflow(
        config_file=files,
        meta_file=str(BUNDLE / "configs" / "metadata.json"),
        logging_file=str(BUNDLE / "configs" / "logging.conf"),
        workflow_type=workflow_type,
        bundle_root=str(bundle_root),
        **overrides,
    )
    workflow.initialize()
    assert workflow.check_properties() == []
    workflow.run()
    workflow.finalize()
    return workflow


@pytest.fixture(scope="session")
def pretrained_bundle(tmp_path_factory) -> Path:
    """A bundle folder pre-trained with ``train.json``'s default CPU recipe (what README command 1 runs): the
    synthetic world in ``data/``, the best weights in ``models/model.pt``, held-out metrics in ``eval/``."""
    root = tmp_path_factory.mktemp("pretrained_bundle")
    run_config("train.json", root, "train")
    return root
