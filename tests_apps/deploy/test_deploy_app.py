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
"""The MONAI Deploy app (``apps/deploy``, MAP layout) run in process on DICOM studies (in the ``.[deploy]``
environment: ``scripts/test_apps.sh``); every output is read back with pydicom."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import yaml
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from medslip_monai.apps.assist import FindingsModel
from medslip_monai.data.readers import displayed_orientation
from medslip_monai.locations import places_text, top_places
from tests_apps.support import CLASSES, REPO, make_bundle, real_chest_dicom, synthetic_case

APP = REPO / "apps" / "deploy"
PRESENT = ("effusion", "nodule")  # make_bundle's thresholds call these present


def _app_class():
    spec = importlib.util.spec_from_file_location("medslip_deploy_app", APP / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MeDSLIPCXRApp


def _instance(
    path: Path,
    pixels: np.ndarray,
    modality: str,
    study: str,
    series: str,
    sop_class: str,
    orientation: tuple[str, str] = ("L", "F"),
) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientSex, ds.PatientBirthDate = "Synthetic^Case", "SYN0001", "O", "19700101"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.StudyID, ds.AccessionNumber = study, series, "1", "ACC1"
    ds.StudyDate, ds.StudyTime, ds.ReferringPhysicianName = "20261125", "120000", ""
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, 1 if modality == "CR" else 2, 1
    ds.PatientOrientation, ds.BodyPartExamined, ds.ViewPosition = list(orientation), "CHEST", "PA"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return ds


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("deploy") / "bundle")


@pytest.fixture(scope="module")
def synthetic_study(tmp_path_factory):
    """A study of a synthetic CR (12 bits, 256 x 256) and a secondary-capture series the app must pass over."""
    folder = tmp_path_factory.mktemp("synthetic_study")
    image, _ = synthetic_case(0, size=256)
    study = generate_uid()
    _instance(
        folder / "cr.dcm", image.astype(np.uint16) * 16, "CR", study, generate_uid(), ComputedRadiographyImageStorage
    )
    _instance(
        folder / "other.dcm",
        4095 - image.astype(np.uint16) * 16,
        "OT",
        study,
        generate_uid(),
        SecondaryCaptureImageStorage,
    )
    return folder


@pytest.fixture(scope="module")
def mirrored_study(tmp_path_factory):
    """The synthetic CR stored mirrored and upside down, as its PatientOrientation (R\\H) says."""
    folder = tmp_path_factory.mktemp("mirrored_study")
    image, _ = synthetic_case(0, size=256)
    stored = image.astype(np.uint16)[::-1, ::-1] * 16
    _instance(
        folder / "cr.dcm", stored, "CR", generate_uid(), generate_uid(), ComputedRadiographyImageStorage, ("R", "H")
    )
    return folder


def _run(bundle: Path, study: Path, output: Path) -> None:
    _app_class()(argv=[sys.executable, str(APP), "-i", str(study), "-o", str(output), "-m", str(bundle)]).run()


def _check_outputs(bundle: Path, source: Path, output: Path) -> None:
    reference = pydicom.dcmread(source)
    model = FindingsModel(bundle, CLASSES)
    answer = model(model.transforms({"image": str(source)})["image"])
    expected = answer["probabilities"].numpy()

    report = json.loads((output / "findings.json").read_text())
    assert report["sop_instance_uid"] == reference.SOPInstanceUID
    assert [row["finding"] for row in report["findings"]] == CLASSES
    np.testing.assert_allclose([row["probability"] for row in report["findings"]], expected, atol=1e-3)
    assert [row["present"] for row in report["findings"]] == [name in PRESENT for name in CLASSES]
    for k, row in enumerate(report["findings"]):
        assert row.get("where") == (top_places(answer["locations"][k]) if row["present"] else None)

    written = {path.name: pydicom.dcmread(path) for path in output.glob("*.dcm")}
    reports = [ds for ds in written.values() if ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.11"]
    assert len(reports) == 1
    sr = reports[0]
    assert (sr.Modality, sr.PatientID, sr.StudyInstanceUID) == ("SR", reference.PatientID, reference.StudyInstanceUID)
    text = sr.ContentSequence[0].TextValue
    for row in report["findings"]:
        line = re.search(rf"^{row['finding']}: (present|absent) \(probability ([0-9.]+)", text, re.MULTILINE)
        assert line and line[1] == ("present" if row["present"] else "absent")
        assert abs(float(line[2]) - row["probability"]) < 1e-3
        if row["present"]:
            assert re.search(
                rf"^{row['finding']}: present .*; where: {re.escape(places_text(row['where']))}$", text, re.M
            )

    captures = sorted(
        (ds for ds in written.values() if ds.SOPClassUID == SecondaryCaptureImageStorage),
        key=lambda ds: int(ds.InstanceNumber),
    )
    order = sorted(PRESENT, key=lambda name: -expected[CLASSES.index(name)])
    comments = [
        re.fullmatch(r"MeDSLIP zero-shot grounding heat map: (\w+); where: (.+)", ds.ImageComments) for ds in captures
    ]
    assert [found[1] for found in comments] == order
    located = {row["finding"]: places_text(row["where"]) for row in report["findings"] if row["present"]}
    assert [found[2] for found in comments] == [located[name] for name in order]
    stored = tuple(reference.get("PatientOrientation") or ("L", "F"))
    for ds in captures:
        assert tuple(ds.PatientOrientation) == displayed_orientation(stored)  # the overlays are drawn as displayed
        assert (ds.PatientID, ds.StudyInstanceUID) == (reference.PatientID, reference.StudyInstanceUID)
        assert ds.SeriesInstanceUID != reference.SeriesInstanceUID and ds.PhotometricInterpretation == "RGB"
        assert ds.pixel_array.shape == (reference.Rows, reference.Columns, 3)
        assert ds.pixel_array.std() > 5  # a picture, not a blank


def test_synthetic_cr_study_gives_json_sr_and_secondary_captures(bundle, synthetic_study, tmp_path):
    _run(bundle, synthetic_study, tmp_path / "out")
    _check_outputs(bundle, synthetic_study / "cr.dcm", tmp_path / "out")


def test_a_study_stored_mirrored_is_read_as_displayed(bundle, synthetic_study, mirrored_study, tmp_path):
    """PatientOrientation R\\H: the same findings, places and overlays as the study stored as displayed (L\\F)."""
    _run(bundle, synthetic_study, tmp_path / "plain")
    _run(bundle, mirrored_study, tmp_path / "mirrored")
    _check_outputs(bundle, mirrored_study / "cr.dcm", tmp_path / "mirrored")
    plain, mirrored = (json.loads((tmp_path / name / "findings.json").read_text()) for name in ("plain", "mirrored"))
    for a, b in zip(plain["findings"], mirrored["findings"]):
        assert a["present"] == b["present"] and abs(a["probability"] - b["probability"]) < 1e-4
        assert [place for place, _ in a.get("where", [])] == [place for place, _ in b.get("where", [])]
    captures = [sorted((tmp_path / name).glob("grounding_*.dcm")) for name in ("plain", "mirrored")]
    for a, b in zip(*captures):
        first, second = pydicom.dcmread(a), pydicom.dcmread(b)
        assert tuple(second.PatientOrientation) == ("L", "F")
        assert np.abs(first.pixel_array.astype(int) - second.pixel_array.astype(int)).mean() < 1


def test_real_chest_cr_gives_json_sr_and_secondary_captures(bundle, tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    source = real_chest_dicom(study)
    _run(bundle, study, tmp_path / "out")
    _check_outputs(bundle, source, tmp_path / "out")


def test_map_layout_and_manifest():
    assert {"app.py", "__main__.py", "app.yaml", "requirements.txt"} <= {path.name for path in APP.iterdir()}
    manifest = yaml.safe_load((APP / "app.yaml").read_text())
    assert manifest["application"]["title"] and manifest["application"]["inputFormats"] == ["file"]
    assert {"cpu", "memory"} <= set(manifest["resources"])
    requirements = (APP / "requirements.txt").read_text()
    for package in ("medslip-monai", "monai", "torch", "highdicom", "pydicom>=3"):
        assert package in requirements


def test_study_without_a_radiograph_fails_naming_the_problem(bundle, tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    image, _ = synthetic_case(1, size=64)
    _instance(
        study / "other.dcm", image.astype(np.uint16), "OT", generate_uid(), generate_uid(), SecondaryCaptureImageStorage
    )
    with pytest.raises(Exception, match="no CR or DX series"):
        _run(bundle, study, tmp_path / "out")
    assert not list(tmp_path.glob("out/*.dcm"))
