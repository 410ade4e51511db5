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
"""MONAI Deploy operators for MeDSLIP (``pip install ".[deploy]"``): a CR/DX study in, zero-shot findings out as
JSON and as the text of a DICOM SR, and grounding heat maps as DICOM secondary captures.

The app that wires them is ``apps/deploy/app.py``. The image is read from the selected instance's file with the
bundle's own reader (``LoadXRayd``: VOI LUT, MONOCHROME1), not from ``DICOMSeriesToVolumeOperator``, which does not
handle single-frame projection radiographs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import highdicom
import numpy as np
import torch
from monai.deploy.core import ConditionType, Fragment, Operator, OperatorSpec
from pydicom.uid import generate_uid

from medslip_monai.apps.assist import EVALUATION_CONFIGS, FindingsModel, bundle_config, read_thresholds
from medslip_monai.data import LoadXRayd
from medslip_monai.data.readers import displayed_orientation
from medslip_monai.locations import places_text, top_places
from medslip_monai.reporting import write_json
from medslip_monai.visualize import heat_overlay

__all__ = ["CXR_SELECTION_RULES", "GroundingSecondaryCaptureWriterOperator", "MeDSLIPFindingsOperator"]

CXR_SELECTION_RULES = json.dumps({"selections": [{"name": "CXR", "conditions": {"Modality": "(?i)(CR|DX)"}}]})


def _first_instance(study_selected_series_list: Sequence[Any]):
    """The first instance of the first selected series, as a pydicom dataset read from its file."""
    for study_selected in study_selected_series_list or []:
        for selected in study_selected.selected_series:
            instances = selected.series.get_sop_instances()
            if instances:
                return instances[0].get_native_sop_instance()
    raise ValueError("the input study has no CR or DX series: nothing to read findings from")


class MeDSLIPFindingsOperator(Operator):
    """Zero-shot findings of a selected CR/DX series.

    Named input ``study_selected_series_list``; named outputs ``text`` (one line per finding, for
    ``DICOMTextSRWriterOperator``) and ``grounding`` (the source dataset, the loaded image and the heat maps of the
    findings called present, for :class:`GroundingSecondaryCaptureWriterOperator`). Writes ``findings.json`` into
    ``output_folder``.

    Args:
        bundle_path: the bundle folder (``configs/``, ``models/model.pt``; ``eval/zero_shot/metrics.json`` when
            present gives per-finding thresholds chosen on validation, otherwise 0.5).
        output_folder: where ``findings.json`` goes.
        classes: findings to report; defaults to ``configs/evaluate.json``'s classes.
        device: defaults to CUDA when available.
    """

    def __init__(
        self,
        fragment: Fragment,
        *args: Any,
        bundle_path: str | Path,
        output_folder: str | Path,
        classes: Sequence[str] | None = None,
        device: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.bundle_path = Path(bundle_path)
        self.output_folder = Path(output_folder)
        self.classes = list(classes or bundle_config(bundle_path, EVALUATION_CONFIGS).get_parsed_content("classes"))
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        metrics = self.bundle_path / "eval" / "zero_shot" / "metrics.json"
        self.thresholds = read_thresholds(metrics if metrics.is_file() else None, self.classes)
        self.thresholds_source = str(metrics) if metrics.is_file() else "default 0.5"
        self.model: FindingsModel | None = None
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("study_selected_series_list")
        spec.output("text").condition(ConditionType.NONE)
        spec.output("grounding").condition(ConditionType.NONE)

    def compute(self, op_input, op_output, context) -> None:
        if self.model is None:
            self.model = FindingsModel(self.bundle_path, self.classes, device=self.device)
        dataset = _first_instance(op_input.receive("study_selected_series_list"))
        path = str(dataset.filename)
        output = self.model(self.model.transforms({"image": path})["image"])
        probabilities = output["probabilities"].tolist()
        present = [p >= t for p, t in zip(probabilities, self.thresholds["classification"])]
        findings = [
            {"finding": name, "probability": round(p, 4), "threshold": round(t, 4), "present": bool(yes)}
            for name, p, t, yes in zip(self.classes, probabilities, self.thresholds["classification"], present)
        ]
        for finding, locations in zip(findings, output["locations"]):
            if finding["present"]:
                finding["where"] = top_places(locations)
        report = {
            "study_instance_uid": str(dataset.get("StudyInstanceUID", "")),
            "series_instance_uid": str(dataset.get("SeriesInstanceUID", "")),
            "sop_instance_uid": str(dataset.get("SOPInstanceUID", "")),
            "model": str(self.model.model_file),
            "thresholds": self.thresholds_source,
            "findings": findings,
        }
        write_json(self.output_folder / "findings.json", report)
        lines = [
            f"{f['finding']}: {'present' if f['present'] else 'absent'} (probability {f['probability']:.3f}, "
            f"threshold {f['threshold']:.3f})" + (f"; where: {places_text(f['where'])}" if f["present"] else "")
            for f in findings
        ]
        text = "MeDSLIP zero-shot findings (research use only, not for diagnosis)\n" + "\n".join(lines)
        order = sorted((k for k, yes in enumerate(present) if yes), key=lambda k: -probabilities[k])
        image = LoadXRayd(keys="image")({"image": path})["image"]
        op_output.emit(text, "text")
        op_output.emit(
            {
                "dataset": dataset,
                "image": image,
                "heat": output["heat"][order],
                "names": [self.classes[k] for k in order],
                "where": [places_text(findings[k]["where"]) for k in order],
            },
            "grounding",
        )
        logging.getLogger(__name__).info("%s: %d of %d findings present", path, len(order), len(self.classes))


class GroundingSecondaryCaptureWriterOperator(Operator):
    """Grounding heat maps as DICOM secondary captures (RGB overlays on the radiograph), one per present finding up to
    ``max_findings``, in a new series of the source study (patient and study copied by highdicom).

    Named input ``grounding`` (from :class:`MeDSLIPFindingsOperator`); files ``grounding_<k>_<finding>.dcm``.
    """

    def __init__(
        self,
        fragment: Fragment,
        *args: Any,
        output_folder: str | Path,
        max_findings: int = 3,
        manufacturer: str = "medslip-monai",
        **kwargs: Any,
    ) -> None:
        self.output_folder = Path(output_folder)
        self.max_findings = max_findings
        self.manufacturer = manufacturer
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input("grounding")

    def compute(self, op_input, op_output, context) -> None:
        grounding = op_input.receive("grounding")
        dataset, series_uid = grounding["dataset"], generate_uid()
        orientation = tuple(str(v) for v in dataset.get("PatientOrientation") or ())
        if len(orientation) != 2:
            logging.getLogger(__name__).warning(
                "no PatientOrientation in the source: the captures say L\\F (a PA view)"
            )
            orientation = ("L", "F")
        orientation = displayed_orientation(orientation)  # the overlays are drawn on the image as displayed
        self.output_folder.mkdir(parents=True, exist_ok=True)
        shown = zip(grounding["names"][: self.max_findings], grounding["heat"], grounding["where"])
        for k, (name, heat, where) in enumerate(shown):
            overlay = heat_overlay(grounding["image"], heat)
            pixels = (overlay.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            capture = highdicom.sc.SCImage.from_ref_dataset(
                ref_dataset=dataset,
                pixel_array=pixels,
                photometric_interpretation="RGB",
                bits_allocated=8,
                coordinate_system="PATIENT",
                series_instance_uid=series_uid,
                series_number=9001,
                sop_instance_uid=generate_uid(),
                instance_number=k + 1,
                manufacturer=self.manufacturer,
                patient_orientation=orientation,
                series_description="MeDSLIP grounding (research use only)",
            )
            capture.ImageComments = f"MeDSLIP zero-shot grounding heat map: {name}; where: {where}"
            capture.save_as(self.output_folder / f"grounding_{k + 1}_{name}.dcm")
