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
"""Hostile use of the bundle (issue 16): strict booleans, unknown settings, broken or foreign weights, output
folders, unreadable images in batch jobs, model selection without positives, short error lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow
from PIL import Image

from medslip_monai.checkpoint import load_official_checkpoint, medslip_to_official, model_settings
from medslip_monai.cli import flag, unknown_overrides
from medslip_monai.engines import FindingsWriter, ResumableCheckpoint
from medslip_monai.errors import error_line
from medslip_monai.metrics import FindingAUC
from medslip_monai.networks import MeDSLIP
from medslip_monai.reporting import OutputFolder
from medslip_monai.text import EntityBooks
from medslip_monai.vocab import PATHOLOGIES
from tests.conftest import BUNDLE, TINY, run_config
from tests.test_image_input import picture

INFERENCE = BUNDLE / "configs" / "inference.json"


@pytest.mark.parametrize(
    "value, expected",
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("true", True),
        ("FALSE", False),
        ("1", True),
        (" 0 ", False),
    ],
)
def test_booleans_are_parsed_strictly(value, expected):
    assert flag(value, "overlays") is expected


@pytest.mark.parametrize("value", ["yes", "no", "", "2", 2, None, "False!"])
def test_other_boolean_values_are_refused_naming_the_setting(value):
    with pytest.raises(ValueError, match="overlays must be true or false"):
        flag(value, "overlays")


def test_false_written_in_lower_case_means_false(tmp_path):
    """``--overlays false`` and ``--resume false`` reach the components as the string "false"."""
    assert FindingsWriter(tmp_path, ["effusion"], overlays="false").overlays is False
    assert ResumableCheckpoint(tmp_path, {}, resume="false").resume is False


def test_misspelt_settings_are_named_with_the_closest_one():
    unknown = unknown_overrides([str(INFERENCE)], ["batchsize", "batch_size", "network_def#dropout", "config_file"])
    assert unknown == ["--batchsize (did you mean --batch_size?)"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A bundle root with a seeded ResNet-10 model (64-pixel input) and a folder of three grey PNGs."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "models").mkdir()
    generator = torch.Generator().manual_seed(0)
    books = EntityBooks(torch.randn(75, 384, generator=generator) / 20, torch.randn(51, 384, generator=generator) / 20)
    torch.manual_seed(0)
    torch.save(MeDSLIP(books, backbone="resnet10").state_dict(), root / "models" / "model.pt")
    (root / "models" / "model.json").write_text(json.dumps({"config": {"image_size": 64}}))
    (root / "images").mkdir()
    for k in range(3):
        Image.fromarray(picture(255).astype(np.uint8)).save(root / "images" / f"good_{k}.png")
    return root


def _infer(bundle: Path, output: Path, **overrides) -> dict:
    settings = {"input": str(bundle / "images"), "output_dir": str(output), "num_workers": 0, "batch_size": 2}
    run_config("inference.json", bundle, "infer", **{**settings, **overrides})
    return json.loads((output / "findings.json").read_text())


def test_a_corrupt_image_is_skipped_and_reported_and_the_others_are_scored(bundle, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        (images / name).write_bytes((bundle / "images" / "good_0.png").read_bytes())
    (images / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    record = _infer(bundle, tmp_path / "out", input=str(images), batch_size=1)
    assert [Path(row["image"]).name for row in record["images"]] == ["a.png", "c.png"]
    assert [Path(item["image"]).name for item in record["skipped"]] == ["b.png"] and record["skipped"][0]["reason"]
    provenance = record["provenance"]
    assert provenance["model_sha256"] and provenance["medslip_monai"] and provenance["written"]


def test_a_run_with_no_readable_image_fails_naming_the_files(bundle, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "x.png").write_bytes(b"not a picture")
    with pytest.raises(Exception) as raised:
        _infer(bundle, tmp_path / "out", input=str(images))
    line = error_line(raised.value)
    assert "none of the 1 input image(s) could be read" in line and "x.png" in line


def test_results_are_never_overwritten_silently(bundle, tmp_path):
    out = tmp_path / "out"
    _infer(bundle, out, threshold=0.0)
    (out / "overlays" / "stale_from_another_input.png").write_bytes(b"")
    with pytest.raises(Exception) as raised:
        _infer(bundle, out)
    line = error_line(raised.value)
    assert "holds an earlier run's results" in line and "--overwrite true" in line
    record = _infer(bundle, out, overwrite="true")
    assert len(record["images"]) == 3 and not (out / "overlays" / "stale_from_another_input.png").exists()
    assert not list(out.glob(".*"))  # no staging folder or lock left behind


def test_an_output_folder_in_use_or_unwritable_is_refused_before_any_work(tmp_path):
    first, second = (OutputFolder(tmp_path / "busy", ["findings.json"]) for _ in range(2))
    first.claim()
    with pytest.raises(FileExistsError, match="in use by another run"):
        second.claim()
    second.release()  # refused runs never drop the lock of the run that holds it
    assert first.lock.exists()
    first.release()
    second.claim()  # a released (or crashed: the lock dies with its process) run lets the next one in
    second.release()
    (tmp_path / "a_file").write_text("")
    with pytest.raises(PermissionError, match="cannot write into the output folder"):
        OutputFolder(tmp_path / "a_file" / "out", ["findings.json"]).claim()


def test_a_run_that_died_holding_the_folder_does_not_block_the_next(tmp_path):
    script = "import os, sys; from medslip_monai.reporting import OutputFolder; OutputFolder(sys.argv[1], []).claim()"
    subprocess.run([sys.executable, "-c", script + "; os._exit(9)", str(tmp_path / "out")], check=False, timeout=120)
    assert (tmp_path / "out" / OutputFolder.LOCK).exists()  # left behind by the killed run
    folder = OutputFolder(tmp_path / "out", [])
    folder.claim()
    folder.release()


def test_a_new_finding_named_like_an_entity_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"output name\(s\) \['effusion'\] appear twice"):
        FindingsWriter(tmp_path, [*PATHOLOGIES, "effusion"])


def test_a_folder_given_as_model_file_is_named_as_a_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder: give the weights file inside it"):
        model_settings(tmp_path)


def test_weights_with_nan_are_refused_on_import_and_on_use(bundle, tmp_path):
    state = torch.load(bundle / "models" / "model.pt", weights_only=True)
    state["trunk.conv1.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(ValueError, match="hold NaN or infinity .*trunk.conv1.weight"):
        model_settings(tmp_path / "model.pt")
    torch.save({"model": medslip_to_official(state)}, tmp_path / "official.pth")
    network = MeDSLIP(text_dim=384, backbone="resnet10")
    with pytest.raises(ValueError, match="hold NaN or infinity"):
        load_official_checkpoint(tmp_path / "official.pth", network, strict=False)


def test_a_foreign_state_dict_is_not_imported_even_without_strict(tmp_path):
    torch.save({"model": {"encoder.weight": torch.zeros(4, 4)}}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="only 0 of the network's .* tensors fit"):
        load_official_checkpoint(tmp_path / "other.pth", MeDSLIP(text_dim=384, backbone="resnet10"), strict=False)


def test_model_selection_survives_a_finding_without_positives():
    probabilities = torch.tensor([[0.9, 0.2], [0.1, 0.8], [0.8, 0.3], [0.2, 0.7]])
    mean = FindingAUC(["a", "b"], reduction="mean")
    mean.reset()
    mean.update((probabilities, torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])))
    assert mean.compute() == 1.0  # "b" has no positive: left out, not NaN
    mean.reset()
    mean.update((probabilities, torch.zeros(4, 2)))
    assert mean.compute() == float("-inf")  # nothing to score: never better than a real score


def test_a_batch_larger_than_the_training_list_stops_before_training(tmp_path):
    workflow = ConfigWorkflow(
        config_file=str(BUNDLE / "configs" / "train.json"), workflow_type="train", bundle_root=str(tmp_path), **TINY
    )
    workflow.parser["batch_size"] = 64  # the tiny world has 24 training images
    workflow.initialize()
    with pytest.raises(Exception) as raised:
        workflow.run()  # the trainer is refused as it is built
    assert "the training list has 24 item(s), fewer than one batch of 64" in error_line(raised.value)


def test_pretraining_records_the_epoch_its_weights_come_from(tmp_path):
    run_config("train.json", tmp_path, "train", **TINY, epochs=2)
    record = json.loads((tmp_path / "models" / "model.json").read_text())
    assert record["epochs_trained"] == 2 and record["selected_epoch"] in (1, 2)


def test_bundle_errors_end_with_one_short_line(tmp_path):
    """A misspelt setting stops the run with one line naming it and the closest real one, no traceback."""
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(INFERENCE)]
    command += ["--bundle_root", str(tmp_path), "--batchsize", "4"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert last.startswith("error: unknown setting(s) --batchsize (did you mean --batch_size?)")
