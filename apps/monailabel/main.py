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
"""MONAI Label app: MeDSLIP annotation assistance for chest X-rays (research use only).

    python -m monailabel.main start_server --app apps/monailabel --studies <images> --host 127.0.0.1 --port 8000 \\
        --conf bundle bundle [--conf segmentation_model <finetuned model.pt>] [--conf thresholds <metrics.json>]

``--conf`` keys: ``bundle`` (the bundle folder; default ``../../bundle`` from this app), ``model`` (pre-trained
weights; default ``<bundle>/models/model.pt``), ``thresholds`` (``configs/evaluate.json``'s ``metrics.json``; default
``<bundle>/eval/zero_shot/metrics.json`` when it exists, else 0.5), ``classes`` (comma-separated annotation classes;
default ``configs/finetune_segmentation.json``'s), ``segmentation_model`` (fine-tuned weights copied to
``model/medslip_segmentation.pt`` when that file does not exist yet).

Models: ``medslip_findings`` (classification), ``medslip_grounding`` and ``medslip_segmentation`` (label maps);
trainer: ``medslip_segmentation`` (fine-tunes on the saved ``final`` label maps and replaces the served weights).
"""

import logging
import shutil
from pathlib import Path

from monailabel.interfaces.app import MONAILabelApp

import medslip_monai
from medslip_monai.apps.assist import SEGMENTATION_CONFIGS, bundle_config, label_values
from medslip_monai.apps.label import FindingsInferTask, GroundingInferTask, SegmentationInferTask, SegmentationTrainTask

logger = logging.getLogger(__name__)


class MeDSLIPApp(MONAILabelApp):
    """Zero-shot findings, zero-shot grounding label maps and a fine-tunable segmentation model from one bundle."""

    def __init__(self, app_dir: str, studies: str, conf: dict) -> None:
        self.bundle = Path(conf.get("bundle") or Path(app_dir).resolve().parents[1] / "bundle").resolve()
        self.model_file = str(conf.get("model") or self.bundle / "models" / "model.pt")
        if not Path(self.model_file).is_file():
            raise FileNotFoundError(
                f"pre-trained model {self.model_file} does not exist: train one (README) or pass --conf model"
            )
        default_thresholds = self.bundle / "eval" / "zero_shot" / "metrics.json"
        self.thresholds = conf.get("thresholds") or (str(default_thresholds) if default_thresholds.is_file() else None)
        classes = conf.get("classes")
        self.classes = (
            classes.split(",")
            if classes
            else bundle_config(self.bundle, SEGMENTATION_CONFIGS).get_parsed_content("classes")
        )
        self.segmentation_weights = Path(app_dir) / "model" / "medslip_segmentation.pt"
        initial = conf.get("segmentation_model")
        if initial and not self.segmentation_weights.is_file():
            self.segmentation_weights.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(initial, self.segmentation_weights)
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="MeDSLIP chest X-ray",
            description="MeDSLIP zero-shot findings, grounding and fine-tuned segmentation (research use only)",
            version=medslip_monai.__version__,
            labels=label_values(self.classes),
        )

    def init_infers(self) -> dict:
        common = {
            "bundle_root": str(self.bundle),
            "classes": self.classes,
            "model_file": self.model_file,
            "thresholds_file": self.thresholds,
        }
        return {
            "medslip_findings": FindingsInferTask(**common),
            "medslip_grounding": GroundingInferTask(**common),
            "medslip_segmentation": SegmentationInferTask(
                str(self.bundle), str(self.segmentation_weights), self.classes, self.model_file
            ),
        }

    def init_trainers(self) -> dict:
        return {
            "medslip_segmentation": SegmentationTrainTask(
                str(self.bundle), str(self.segmentation_weights), self.classes, self.model_file
            )
        }
