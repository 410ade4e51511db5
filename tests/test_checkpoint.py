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
"""Official checkpoint import: a round trip through the official key layout, strictness, and the import script."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigWorkflow

from medslip_monai.checkpoint import load_official_checkpoint, medslip_to_official, model_settings, official_to_medslip
from medslip_monai.networks import MeDSLIP
from medslip_monai.text import EntityBooks, entity_books
from medslip_monai.vocab import PATHOLOGIES
from tests.test_image_input import dicom, picture

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "import_official.py"
BUNDLE = Path(__file__).resolve().parents[1] / "bundle"


def _network(books, seed):
    torch.manual_seed(seed)
    return MeDSLIP(books, backbone="resnet50", init="official", icl_scale=1.0, protocl_scale=1.0).eval()


@pytest.fixture(scope="module")
def books():
    generator = torch.Generator().manual_seed(0)
    return EntityBooks(torch.randn(75, 64, generator=generator), torch.randn(51, 64, generator=generator))


@pytest.fixture(scope="module")
def official_file(tmp_path_factory, books):
    """Weights of a trained-looking network saved as the official release does: DDP prefix, {"model": ...}."""
    source = _network(books, seed=1)
    with torch.no_grad():
        for buffer in source.trunk.modules():
            if isinstance(buffer, torch.nn.BatchNorm2d):
                buffer.running_mean.uniform_(-0.1, 0.1)
                buffer.running_var.uniform_(0.5, 1.5)
    state = {f"module.{k}": v for k, v in medslip_to_official(source.state_dict()).items()}
    path = tmp_path_factory.mktemp("official") / "MeDSLIP_resnet50.pth"
    torch.save({"model": state}, path)
    return path, source


def test_official_layout_has_the_official_names(official_file):
    state = torch.load(official_file[0], weights_only=True)["model"]
    names = {k.split(".")[1] for k in state}
    assert names == {
        "res_features",
        "mask_generator",
        "res_l1_pathology",
        "res_l2_pathology",
        "res_l1_anatomy",
        "res_l2_anatomy",
        "pathology_embedding_layer",
        "decoder_pathology",
        "decoder_anatomy",
        "classifier_pathology",
        "classifier_anatomy",
        "cl_fc_pathology",
        "cl_fc_anatomy",
    }
    assert "module.res_features.6.5.conv3.weight" in state  # layer3, last bottleneck
    assert "module.decoder_anatomy.layers.3.multihead_attn.in_proj_weight" in state
    assert "module.decoder_pathology.layers.0.linear2.bias" in state


def test_round_trip_through_the_official_layout_gives_the_same_outputs(official_file, books):
    path, source = official_file
    target = _network(books, seed=2)
    report = load_official_checkpoint(path, target)
    assert (
        report.missing == []
        and report.unexpected == []
        and report.loaded == len(medslip_to_official(source.state_dict()))
    )
    image = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected, got = source(image), target(image)
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


def test_strict_import_names_what_does_not_fit(official_file, books, tmp_path):
    path, _ = official_file
    state = torch.load(path, weights_only=True)["model"]
    broken = dict(state)
    del broken["module.mask_generator.bias"]
    broken["module.extra_head.weight"] = torch.zeros(2)
    torch.save({"model": broken}, tmp_path / "broken.pth")
    with pytest.raises(ValueError) as error:
        load_official_checkpoint(tmp_path / "broken.pth", _network(books, seed=2))
    assert "missing: mask_generator.bias" in str(error.value) and "unexpected: module.extra_head.weight" in str(
        error.value
    )
    report = load_official_checkpoint(
        tmp_path / "broken.pth", _network(books, seed=2), ignore=["mask_generator.bias", "module.extra_head.weight"]
    )
    assert report.ignored == ["mask_generator.bias", "module.extra_head.weight"]
    other_width = EntityBooks(torch.zeros(75, 32), torch.zeros(51, 32))
    with pytest.raises(ValueError, match="shape mismatch: query_embedding.weight"):
        load_official_checkpoint(path, _network(other_width, seed=0))


def test_grounding_script_name_and_plain_state_dicts_are_accepted():
    renamed, unknown = official_to_medslip({"disease_embedding_layer.weight": torch.zeros(1), "bert.x": torch.zeros(1)})
    assert renamed.keys() == {"query_embedding.weight"} and unknown == ["bert.x"]


class _Payload:
    def __reduce__(self):
        return (print, ("this ran",))


def test_pickled_code_posing_as_a_checkpoint_is_refused(tmp_path, books):
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"model": _Payload()}))
    with pytest.raises(ValueError, match="evil.pth: not a loadable weights-only checkpoint"):
        load_official_checkpoint(path, _network(books, seed=0))


def test_import_script_writes_the_bundle_model_and_provenance(tmp_path):
    """End to end with the embedded text encoder (384-d): books embedded, strict load, model.pt + model.json."""
    minilm = entity_books(pooling="cls")  # the script embeds as the official code does: [CLS], 128 tokens
    source = MeDSLIP(minilm, backbone="resnet50", init="official", icl_scale=1.0, protocl_scale=1.0)
    torch.save({"model": medslip_to_official(source.state_dict())}, tmp_path / "official.pth")
    out = tmp_path / "models" / "model.pt"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--checkpoint", str(tmp_path / "official.pth"), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "missing (0): -" in result.stdout and "unexpected (0): -" in result.stdout
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["report"]["strict"] and record["network"]["text_dim"] == 384
    loaded = MeDSLIP(text_dim=384, backbone="resnet50")
    loaded.load_state_dict(torch.load(out, weights_only=True))  # strict
    assert torch.equal(loaded.mask_generator.weight, source.mask_generator.weight)
    assert torch.allclose(loaded.pathology_book, minilm.pathology)

    # README's second command: the imported model on a folder of DICOMs, with a finding described in words
    settings = model_settings(out)
    assert (settings["backbone"], settings["image_size"], settings["icl_scale"], settings["pooling"]) == (
        "resnet50",
        224,
        1.0,
        "cls",
    )
    (tmp_path / "dicoms").mkdir()
    dicom(tmp_path / "dicoms" / "IM0001", 4095 - picture(4095), "MONOCHROME1", bits=12)
    workflow = ConfigWorkflow(
        config_file=str(BUNDLE / "configs" / "inference.json"),
        workflow_type="infer",
        bundle_root=str(tmp_path),
        input=str(tmp_path / "dicoms"),
        num_workers=0,
        new_findings={"covid-19": "Bilateral peripheral ground-glass opacities."},
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    record = json.loads((tmp_path / "eval" / "inference" / "findings.json").read_text())
    assert record["findings"] == [*PATHOLOGIES, "covid-19"] and len(record["images"]) == 1
    assert Path(record["images"][0]["overlay"]).is_file()
