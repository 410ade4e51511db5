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
"""The MONAI Label app on a real ``monailabel start_server`` bound to 127.0.0.1 (run in the ``.[label]`` environment:
``scripts/test_apps.sh``)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
import torch
from fastapi import HTTPException
from PIL import Image

from medslip_monai.apps.assist import FindingsModel, SegmentationModel, label_map, read_thresholds
from medslip_monai.apps.label import SegmentationInferTask
from medslip_monai.locations import places_text, top_places
from tests_apps.support import CLASSES, REPO, make_bundle, real_chest_dicom, synthetic_case, write_png

STARTUP_SECONDS = 240
REQUEST_SECONDS = 300


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("label")
    bundle = make_bundle(root / "bundle")
    studies = root / "studies"
    studies.mkdir()
    labels = {}
    for index in range(5):
        image, labels[f"case_{index}"] = synthetic_case(index)
        write_png(studies / f"case_{index}.png", image)
    app = root / "app"
    app.mkdir()
    shutil.copy(REPO / "apps" / "monailabel" / "main.py", app / "main.py")  # the server writes model/, logs/ there
    return {
        "root": root,
        "bundle": bundle,
        "studies": studies,
        "app": app,
        "labels": labels,
        "dicom": real_chest_dicom(root),
    }


@pytest.fixture(scope="module")
def server(workspace):
    """``python -m monailabel.main start_server`` on a free port of 127.0.0.1; stopped after the module."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "monailabel.main",
        "start_server",
        "--app",
        str(workspace["app"]),
        "--studies",
        str(workspace["studies"]),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--conf",
        "bundle",
        str(workspace["bundle"]),
        "--conf",
        "segmentation_model",
        str(workspace["bundle"] / "segmentation.pt"),
    ]
    env = {
        **os.environ,
        "MONAI_LABEL_TRACKING_ENABLED": "false",
        "MONAI_LABEL_DATASTORE_AUTO_RELOAD": "false",
        "MONAI_LABEL_SESSIONS": "false",
        "MONAI_LABEL_TASKS_SCORING": "false",
        "PYTHONUNBUFFERED": "1",
    }
    log = open(workspace["root"] / "server.log", "w")  # noqa: SIM115 (the server writes it until the finally block)
    process = subprocess.Popen(command, cwd=workspace["root"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {process.returncode}:\n{(workspace['root'] / 'server.log').read_text()[-4000:]}"
                )
            try:
                if requests.get(f"{url}/info/", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer from {url} in {STARTUP_SECONDS} s")
            time.sleep(1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        log.close()


def _infer(
    url: str, model: str, image: str = "", upload: Path | None = None, output: str = "json"
) -> requests.Response:
    files = {"file": (upload.name, upload.read_bytes())} if upload else None
    return requests.post(
        f"{url}/infer/{model}",
        params={"image": image, "output": output},
        data={"params": json.dumps({"device": "cpu"})},
        files=files,
        timeout=REQUEST_SECONDS,
    )


def _label_png(response: requests.Response) -> np.ndarray:
    assert response.status_code == 200, response.text[:2000]
    return np.array(Image.open(io.BytesIO(response.content)))


def test_info_lists_the_three_models_and_the_trainer(server):
    info = requests.get(f"{server}/info/", timeout=30).json()
    assert info["labels"] == {name: k + 1 for k, name in enumerate(CLASSES)}
    assert info["models"]["medslip_findings"]["type"] == "classification"
    assert info["models"]["medslip_findings"]["labels"] == CLASSES
    assert info["models"]["medslip_grounding"]["type"] == "segmentation"
    assert info["models"]["medslip_segmentation"]["dimension"] == 2
    assert set(info["trainers"]) == {"medslip_segmentation"}
    assert requests.get(f"{server}/datastore/", params={"output": "stats"}, timeout=30).json()["total"] == 5


def test_findings_and_grounding_are_the_bundle_models_answers(server, workspace):
    """On a synthetic PNG of the datastore and on the real chest CR uploaded as DICOM, the server's scores and
    label maps equal the bundle's models run in this process."""
    model = FindingsModel(workspace["bundle"], CLASSES)
    thresholds = read_thresholds(workspace["bundle"] / "eval" / "zero_shot" / "metrics.json", CLASSES)
    for image, upload, size in (("case_0", None, (128, 128)), ("", workspace["dicom"], (1955, 1841))):
        path = upload or workspace["studies"] / f"{image}.png"
        expected = model(model.transforms({"image": str(path)})["image"])

        answer = _infer(server, "medslip_findings", image, upload).json()
        rows = answer["prediction"]
        assert [row["label"] for row in rows] == CLASSES
        np.testing.assert_allclose([row["score"] for row in rows], expected["probabilities"].numpy(), atol=1e-4)
        assert [row["present"] for row in rows] == [name in ("effusion", "nodule") for name in CLASSES]
        for k, row in enumerate(rows):
            where = top_places(expected["locations"][k]) if row["present"] else None
            assert row.get("where") == where and row.get("location") == (places_text(where) if where else None)

        labels = _label_png(_infer(server, "medslip_grounding", image, upload, output="image"))
        present = torch.tensor([name in ("effusion", "nodule") for name in CLASSES])
        wanted = label_map(expected["heat"], thresholds["grounding"], present).numpy()
        assert labels.shape == size
        assert set(np.unique(labels)) <= {0, 1, 4} and (labels > 0).any()  # only the present findings, somewhere
        assert (labels == wanted).mean() > 0.999


def test_a_dicom_stored_mirrored_gets_its_label_map_in_its_own_pixels(server, workspace, tmp_path):
    """The real CR stored mirrored (PatientOrientation R\\F): the model sees it as displayed, so scores and places are
    the original's, and the label map comes back in the upload's stored layout: the original's, mirrored."""
    original = pydicom.dcmread(workspace["dicom"])
    mirrored = pydicom.dcmread(workspace["dicom"])
    mirrored.PixelData = np.ascontiguousarray(original.pixel_array[:, ::-1]).tobytes()
    mirrored.PatientOrientation = ["R", "F"]
    upload = tmp_path / "mirrored.dcm"
    mirrored.save_as(upload)
    answers = [
        _infer(server, "medslip_findings", "", path).json()["prediction"] for path in (workspace["dicom"], upload)
    ]
    for a, b in zip(*answers):
        assert abs(a["score"] - b["score"]) < 1e-4 and a.get("where") == b.get("where")
    labels = [
        _label_png(_infer(server, "medslip_grounding", "", path, output="image"))
        for path in (workspace["dicom"], upload)
    ]
    assert (labels[1] == labels[0][:, ::-1]).mean() > 0.999


def test_segmentation_serves_the_fine_tuned_weights(server, workspace):
    model = SegmentationModel(
        workspace["bundle"], workspace["app"] / "model" / "medslip_segmentation.pt", classes=CLASSES
    )
    for image, upload, size in (("case_1", None, (128, 128)), ("", workspace["dicom"], (1955, 1841))):
        path = upload or workspace["studies"] / f"{image}.png"
        wanted = label_map(model(model.transforms({"image": str(path)})["image"]), 0.5).numpy()
        labels = _label_png(_infer(server, "medslip_segmentation", image, upload, output="image"))
        assert labels.shape == size and labels.max() <= len(CLASSES)
        assert (labels == wanted).mean() > 0.999


def test_malformed_upload_is_refused_and_the_server_keeps_answering(server, workspace):
    broken = workspace["root"] / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n this is not a picture")
    for model in ("medslip_findings", "medslip_grounding", "medslip_segmentation"):
        response = _infer(server, model, upload=broken)
        assert 400 <= response.status_code < 500, response.text[:500]
        assert "cannot use the image" in response.json()["detail"]
    assert requests.get(f"{server}/info/", timeout=30).status_code == 200
    assert _infer(server, "medslip_findings", "case_0").status_code == 200


def test_train_on_saved_labels_replaces_the_served_weights(server, workspace):
    served = workspace["app"] / "model" / "medslip_segmentation.pt"
    before = hashlib.sha256(served.read_bytes()).hexdigest()
    for image in ("case_1", "case_2", "case_4"):  # cases with findings
        label = write_png(workspace["root"] / f"{image}_label.png", workspace["labels"][image])
        response = requests.put(
            f"{server}/datastore/label",
            params={"image": image, "tag": "final"},
            files={"label": (label.name, label.read_bytes())},
            timeout=60,
        )
        assert response.status_code == 200, response.text[:500]
    response = requests.post(
        f"{server}/train/medslip_segmentation",
        params={"run_sync": "true"},
        json={"max_steps": 2, "validations": 1, "batch_size": 2, "device": "cpu"},
        timeout=REQUEST_SECONDS,
    )
    assert response.status_code == 200, response.text[:2000]
    assert hashlib.sha256(served.read_bytes()).hexdigest() != before
    runs = list((served.parent / "runs").iterdir())
    assert len(runs) == 1
    datalist = json.loads((runs[0] / "datalist.json").read_text())
    assert len(datalist["training"]) == 2 and len(datalist["validation"]) == 1
    assert (runs[0] / "eval" / "validation" / "metrics.json").is_file()
    # the infer task reloads the new weights: its answer is the new model's
    model = SegmentationModel(workspace["bundle"], served, classes=CLASSES)
    path = workspace["studies"] / "case_3.png"
    wanted = label_map(model(model.transforms({"image": str(path)})["image"]), 0.5).numpy()
    assert (_label_png(_infer(server, "medslip_segmentation", "case_3", output="image")) == wanted).mean() > 0.999


def test_segmentation_without_weights_is_not_offered_and_says_why(workspace):
    task = SegmentationInferTask(str(workspace["bundle"]), str(workspace["root"] / "none.pt"), CLASSES)
    assert not task.is_valid()  # so /info/ leaves it out until a training run writes the weights
    with pytest.raises(HTTPException, match="404") as raised:
        task({"image": str(workspace["studies"] / "case_0.png"), "device": "cpu"})
    assert "none.pt" in raised.value.detail and "train it first" in raised.value.detail
