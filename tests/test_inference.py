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
"""Inference: the predictor network, open vocabulary, inference.json on mixed formats, MONAI's bundle checks and
TorchScript export."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow
from PIL import Image

from medslip_monai.checkpoint import model_settings
from medslip_monai.networks import MeDSLIP, MeDSLIPPredictor
from medslip_monai.text import EntityBooks
from medslip_monai.vocab import ANATOMIES, NON_LOCATIONS, PATHOLOGIES, pathology_index
from tests.test_image_input import dicom, picture

BUNDLE = Path(__file__).resolve().parents[1] / "bundle"
CONFIG = BUNDLE / "configs" / "inference.json"


def _books(dim: int = 384, seed: int = 0) -> EntityBooks:
    generator = torch.Generator().manual_seed(seed)
    return EntityBooks(
        torch.randn(len(PATHOLOGIES), dim, generator=generator) / dim**0.5,
        torch.randn(len(ANATOMIES), dim, generator=generator) / dim**0.5,
    )


@pytest.fixture(scope="module")
def weights():
    torch.manual_seed(0)
    return MeDSLIP(_books(), backbone="resnet10").state_dict()


def _predictor(weights, **kwargs) -> MeDSLIPPredictor:
    network = MeDSLIPPredictor(text_dim=384, backbone="resnet10", **kwargs).eval()
    network.load_state_dict(weights)  # strict: the predictor has exactly MeDSLIP's state
    return network


def test_predictor_gives_the_pretraining_network_probabilities(weights):
    reference = MeDSLIP(text_dim=384, backbone="resnet10").eval()
    reference.load_state_dict(weights)
    image = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = torch.softmax(reference(image)["pathology_logits"], -1)[..., 1]
        everything = _predictor(weights)(image)
        chosen = _predictor(weights, findings=["nodule", "effusion"])(image)
    assert everything.shape == (2, 75)
    torch.testing.assert_close(everything, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(chosen, expected[:, [pathology_index("nodule"), pathology_index("effusion")]])


def test_new_findings_change_nothing_else_and_a_copied_entity_scores_like_it(weights):
    book = weights["pathology_book"]
    new = torch.stack([book[pathology_index("effusion")], torch.randn(384) / 384**0.5])
    image = torch.randn(3, 3, 64, 64)
    plain, extended = _predictor(weights), _predictor(weights, new_findings=new)
    with torch.no_grad():
        before, after = plain(image), extended(image)
        prediction = extended.predict(image)
    assert after.shape == (3, 77)
    torch.testing.assert_close(after[:, :75], before, rtol=0, atol=1e-6)
    torch.testing.assert_close(after[:, 75], before[:, pathology_index("effusion")], rtol=0, atol=1e-6)
    torch.testing.assert_close(prediction.probabilities, after)
    assert prediction.maps.shape == (3, 77, 4, 4)
    torch.testing.assert_close(prediction.maps[:, 75], prediction.maps[:, pathology_index("effusion")])
    locations = prediction.locations
    assert locations.shape == (3, 77, 51)
    torch.testing.assert_close(locations.sum(-1), torch.ones(3, 77))
    assert float(locations[..., [ANATOMIES.index(name) for name in NON_LOCATIONS]].abs().max()) == 0
    with pytest.raises(ValueError, match=r"new_findings must be \[K, 384\]"):
        MeDSLIPPredictor(text_dim=384, backbone="resnet10", new_findings=torch.zeros(2, 768))


@pytest.mark.parametrize("options", [{}, {"token_stride": 8, "positional_encoding": "sine"}])
def test_predictor_scripts_to_torchscript_with_equal_outputs(weights, options):
    network = _predictor(weights, new_findings=torch.randn(1, 384), **options)
    scripted = torch.jit.script(network)
    image = torch.randn(2, 3, 96, 80)
    with torch.no_grad():
        assert float((scripted(image) - network(image)).abs().max()) <= 1e-5


@pytest.fixture(scope="module")
def bundle_root(tmp_path_factory, weights):
    """A bundle root holding a model.pt (no provenance file) and a folder of one image per input kind."""
    root = tmp_path_factory.mktemp("bundle")
    (root / "models").mkdir()
    torch.save(weights, root / "models" / "model.pt")
    images = root / "images"
    (images / "nested").mkdir(parents=True)
    Image.fromarray(picture(255).astype(np.uint8)).save(images / "grey.png")
    Image.fromarray(np.stack([picture(255).astype(np.uint8)] * 3, -1)).save(images / "nested" / "colour.jpg")
    dicom(images / "mono1.dcm", 4095 - picture(4095), "MONOCHROME1", bits=12)
    dicom(images / "IM0001", picture(65535), bits=16)
    nib.save(nib.Nifti1Image(picture(4095).T.astype(np.float32), np.eye(4)), images / "x.nii.gz")
    return root


def test_model_settings_come_from_the_weights_and_defaults(bundle_root):
    settings = model_settings(bundle_root / "models" / "model.pt")
    assert settings["backbone"] == "resnet10" and settings["text_dim"] == 384 and settings["image_size"] == 224
    with pytest.raises(FileNotFoundError, match="import the official weights"):
        model_settings(bundle_root / "models" / "missing.pt")


def test_inference_config_on_every_input_kind_with_a_new_finding(bundle_root, tmp_path):
    new = {"fluid at the lung base": "Fluid in the pleural space at the lung base, blunting the costophrenic angle."}
    workflow = ConfigWorkflow(
        config_file=str(CONFIG),
        workflow_type="infer",
        bundle_root=str(bundle_root),
        input=str(bundle_root / "images"),
        output_dir=str(tmp_path),
        new_findings=new,
        threshold=0.0,
        image_size=64,
        num_workers=0,
        batch_size=5,
    )
    workflow.initialize()
    assert workflow.check_properties() == []
    workflow.run()
    workflow.finalize()
    record = json.loads((tmp_path / "findings.json").read_text())
    names = [Path(row["image"]).name for row in record["images"]]
    assert names == ["IM0001", "grey.png", "mono1.dcm", "colour.jpg", "x.nii.gz"]
    assert record["findings"] == [*PATHOLOGIES, "fluid at the lung base"]
    first = record["images"][0]
    assert len(first["probabilities"]) == 76 and all(0 <= p <= 1 for p in first["probabilities"].values())
    assert "normal" in first["present"] and "normal" not in first["where"]  # descriptive entities are not located
    where = first["where"]["fluid at the lung base"]
    assert len(where) == 3 and all(anatomy in ANATOMIES and anatomy not in NON_LOCATIONS for anatomy, _ in where)
    assert [p for _, p in where] == sorted((p for _, p in where), reverse=True)
    overlay = Image.open(first["overlay"])
    assert overlay.width == 384 * 5 and overlay.height > 384  # the input and at most four findings, captioned
    with open(tmp_path / "findings.csv") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["image", *PATHOLOGIES, "fluid at the lung base", "present", "where"] and len(rows) == 6
    assert "fluid at the lung base: " in rows[1][-1]


def _bundle_command(*args: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "monai.bundle",
        *args,
        "--meta_file",
        str(BUNDLE / "configs" / "metadata.json"),
        "--config_file",
        str(CONFIG),
    ]
    return subprocess.run(command, capture_output=True, text=True)


@pytest.mark.slow
def test_verify_net_in_out_and_ckpt_export_to_torchscript(bundle_root, weights):
    result = _bundle_command("verify_net_in_out", "network_def", "--bundle_root", str(bundle_root), "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "data shape of network is verified with no error" in result.stdout + result.stderr
    exported = bundle_root / "models" / "model.ts"
    result = _bundle_command(
        "ckpt_export",
        "network_def",
        "--filepath",
        str(exported),
        "--bundle_root",
        str(bundle_root),
        "--ckpt_file",
        str(bundle_root / "models" / "model.pt"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scripted = torch.jit.load(exported)
    image = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        assert float((scripted(image) - _predictor(weights)(image)).abs().max()) <= 1e-5
