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
"""Hostile inputs (docs/robustness.md): each gives an error naming the item and the problem, or, in training under
the "skip" policy, a logged skip; never a crash without a message and never silent wrong output."""

from __future__ import annotations

import io
import logging
import pickle
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow
from monai.transforms import Compose
from PIL import Image
from torch.utils.data import DataLoader

from medslip_monai.checkpoint import model_settings
from medslip_monai.data import LoadXRayd, build_dataset, collate_loaded
from medslip_monai.networks import MeDSLIP
from medslip_monai.reports import extract_triplets
from tests.conftest import TINY
from tests.test_image_input import dicom, picture

BUNDLE = Path(__file__).resolve().parents[1] / "bundle"


def load(path) -> torch.Tensor:
    return LoadXRayd("image")({"image": str(path)})["image"]


def _png(path: Path) -> Path:
    Image.fromarray(picture(255).astype(np.uint8)).save(path)
    return path


def _jpeg(path: Path) -> Path:
    Image.fromarray(picture(255).astype(np.uint8)).save(path, quality=90)
    return path


def _dcm(path: Path) -> Path:
    dicom(path, picture(4095), bits=12)
    return path


@pytest.mark.parametrize("make", [_png, _jpeg, _dcm], ids=["png", "jpeg", "dicom"])
def test_zero_byte_and_truncated_images_are_refused_by_name(tmp_path, make):
    good = make(tmp_path / f"good.{make.__name__[1:]}")
    assert load(good).shape[1:] == picture(1).shape
    data = good.read_bytes()
    for name, content in (("empty", b""), ("truncated", data[: len(data) // 2])):
        broken = tmp_path / f"{name}{good.suffix}"
        broken.write_bytes(content)
        with pytest.raises(ValueError, match=rf"{name}\{good.suffix}: "):
            load(broken)


def test_tiny_huge_and_non_finite_images_are_refused(tmp_path):
    Image.new("L", (1, 1), 128).save(tmp_path / "dot.png")
    with pytest.raises(ValueError, match=r"dot\.png: \(1, 1\) pixels is below the smallest side of 32"):
        load(tmp_path / "dot.png")
    Image.new("L", (10000, 10000), 0).save(tmp_path / "huge.png")  # refused from its header, before decoding
    with pytest.raises(ValueError, match=r"huge\.png: 10000 x 10000 pixels is above the limit of 67108864"):
        load(tmp_path / "huge.png")
    values = picture(1).T.astype(np.float32)
    values[3, 4], values[5, 6] = np.nan, np.inf
    nib.save(nib.Nifti1Image(values, np.eye(4)), tmp_path / "nan.nii.gz")
    with pytest.raises(ValueError, match=r"nan\.nii\.gz: 2 pixels are NaN or infinite"):
        load(tmp_path / "nan.nii.gz")
    with pytest.raises(FileNotFoundError, match=r"gone\.png does not exist"):
        load(tmp_path / "gone.png")


def _items(tmp_path: Path) -> list[dict]:
    images = [_png(tmp_path / f"{k}.png") for k in range(3)]
    (tmp_path / "1.png").write_bytes(b"")  # the middle one is broken
    return [{"image": str(path)} for path in images]


@pytest.mark.parametrize("dataset_type", ["Dataset", "CacheDataset", "PersistentDataset"])
def test_training_data_skip_policy_logs_and_drops_bad_items(tmp_path, caplog, dataset_type):
    transform = Compose([LoadXRayd("image")])
    kind = {"dataset_type": dataset_type, "cache_dir": tmp_path / "cache", "num_workers": 0}
    with pytest.raises(RuntimeError) as raised:  # MONAI's Compose names the transform, its cause the file
        next(iter(DataLoader(build_dataset(_items(tmp_path), transform, **kind), batch_size=3)))
    assert "1.png: cannot read the image" in str(raised.value.__cause__)
    dataset = build_dataset(_items(tmp_path), transform, on_error="skip", **kind)
    with caplog.at_level(logging.WARNING):
        batch = next(iter(DataLoader(dataset, batch_size=3, collate_fn=collate_loaded)))
    assert batch["image"].shape[0] == 2
    assert "skipping item" in caplog.text and "1.png: cannot read the image" in caplog.text
    assert "(1 item(s) skipped" in caplog.text
    with pytest.raises(RuntimeError, match="none of the 1 items of a batch could be loaded"):
        collate_loaded([None])


def test_pretraining_skips_a_broken_image_under_the_skip_policy(tmp_path, capfd):
    overrides = {**TINY, "synthetic#num": 32, "epochs": 1}
    first = ConfigWorkflow(
        config_file=str(BUNDLE / "configs" / "train.json"),
        workflow_type="train",
        bundle_root=str(tmp_path),
        on_bad_item="skip",
        **overrides,
    )
    first.initialize()
    broken = tmp_path / "data" / "synthetic_cxr" / "images" / "training_00003.png"
    broken.write_bytes(broken.read_bytes()[:100])
    first.run()
    first.finalize()
    logged = "".join(capfd.readouterr())  # the bundle's logging.conf logs to the console
    assert "skipping item" in logged and "training_00003.png: cannot read the image" in logged
    assert first.trainer.state.iteration == 2 and (tmp_path / "models" / "model.pt").is_file()


def test_reports_empty_and_of_a_megabyte():
    assert extract_triplets("") == [] and extract_triplets("   \n ") == []
    report = "FINDINGS: There is a small left pleural effusion. No pneumothorax. Mild cardiomegaly. " * 12000
    assert len(report) > 1_000_000
    assert sorted(extract_triplets(report)) == [
        ("left_pleural", "effusion", 1),
        ("unspecified", "cardiomegaly", 1),
        ("unspecified", "pneumothorax", 0),
    ]


@pytest.mark.slow
def test_malformed_configs_name_the_file_and_the_problem(tmp_path):
    (tmp_path / "broken.json").write_text('{"a": 1,, }')
    (tmp_path / "dangling.json").write_text('{"run": ["$print(@missing)"]}')
    for name, problem in (("broken.json", "line 1 column 9"), ("dangling.json", "missing")):
        command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(tmp_path / name)]
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode != 0 and name in result.stderr and problem in result.stderr


def test_checkpoint_of_another_architecture_and_pickled_code_are_refused(tmp_path):
    alien = {"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(1000, 2048)}  # torchvision-like
    torch.save(alien, tmp_path / "alien.pt")
    with pytest.raises(ValueError, match=r"alien\.pt is not a MeDSLIP state dict"):
        model_settings(tmp_path / "alien.pt")
    torch.save(MeDSLIP(text_dim=384, backbone="resnet18").state_dict(), tmp_path / "resnet18.pt")
    network = MeDSLIP(text_dim=384, backbone="resnet10")
    with pytest.raises(RuntimeError, match="Unexpected key"):
        network.load_state_dict(torch.load(tmp_path / "resnet18.pt", weights_only=True))

    class Payload:
        def __reduce__(self):
            return (print, ("executed",))

    buffer = io.BytesIO()
    pickle.dump({"model": Payload()}, buffer)
    (tmp_path / "evil.pt").write_bytes(buffer.getvalue())
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        model_settings(tmp_path / "evil.pt")


def test_resume_from_a_checkpoint_of_another_backbone_stops_with_the_keys(tmp_path):
    overrides = {
        "synthetic#num": 16,
        "synthetic#num_val": 8,
        "synthetic#size": 64,
        "image_size": 64,
        "num_workers": 0,
        "dataset_type": "Dataset",
        "epochs": 1,
    }
    for backbone in ("resnet10", "resnet18"):
        workflow = ConfigWorkflow(
            config_file=str(BUNDLE / "configs" / "train.json"),
            workflow_type="train",
            bundle_root=str(tmp_path),
            backbone=backbone,
            **overrides,
        )
        workflow.initialize()
        if backbone == "resnet18":
            with pytest.raises(RuntimeError) as raised:
                workflow.run()
            messages, error = [], raised.value
            while error is not None:
                messages.append(str(error))
                error = error.__cause__
            assert any('Missing key(s) in state_dict: "trunk.layer1.1' in message for message in messages)
        else:
            workflow.run()
        workflow.finalize()
