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
"""MeDSLIP chest X-ray findings as a MONAI Deploy application (MAP layout).

``python apps/deploy -i <DICOM study folder> -o <output folder> -m <bundle folder>`` (or ``HOLOSCAN_INPUT_PATH``,
``HOLOSCAN_OUTPUT_PATH``, ``HOLOSCAN_MODEL_PATH``): the first CR/DX series of the study is read, and the output
folder receives ``findings.json``, a Basic Text SR with the findings (patient and study tags copied) and one
secondary capture per present finding with its grounding heat map.
"""

import logging
from pathlib import Path

from monai.deploy.conditions import CountCondition
from monai.deploy.core import AppContext, Application
from monai.deploy.operators.dicom_data_loader_operator import DICOMDataLoaderOperator
from monai.deploy.operators.dicom_series_selector_operator import DICOMSeriesSelectorOperator
from monai.deploy.operators.dicom_text_sr_writer_operator import DICOMTextSRWriterOperator
from monai.deploy.operators.dicom_utils import EquipmentInfo, ModelInfo

import medslip_monai
from medslip_monai.apps.deploy import (
    CXR_SELECTION_RULES,
    GroundingSecondaryCaptureWriterOperator,
    MeDSLIPFindingsOperator,
)


class MeDSLIPCXRApp(Application):
    """DICOM CR/DX study -> MeDSLIP zero-shot findings (JSON and DICOM SR) and grounding heat maps (DICOM SC)."""

    name = "medslip-cxr"
    description = "MeDSLIP zero-shot chest X-ray findings and grounding (research use only)"
    version = medslip_monai.__version__

    def compose(self) -> None:
        context: AppContext = Application.init_app_context(self.argv)
        study_folder, output_folder = Path(context.input_path), Path(context.output_path)
        bundle = Path(context.model_path)
        logging.info("study %s -> %s with the bundle %s", study_folder, output_folder, bundle)

        loader = DICOMDataLoaderOperator(self, CountCondition(self, 1), input_folder=study_folder, name="dicom_loader")
        selector = DICOMSeriesSelectorOperator(self, rules=CXR_SELECTION_RULES, name="cxr_selector")
        findings = MeDSLIPFindingsOperator(self, bundle_path=bundle, output_folder=output_folder, name="findings")
        report = DICOMTextSRWriterOperator(
            self,
            output_folder=output_folder,
            model_info=ModelInfo("medslip-monai", "MeDSLIP", self.version, ""),
            equipment_info=EquipmentInfo(manufacturer="medslip-monai", software_version_number=self.version),
            copy_tags=True,
            name="findings_sr",
        )
        heat_maps = GroundingSecondaryCaptureWriterOperator(self, output_folder=output_folder, name="grounding_sc")

        self.add_flow(loader, selector, {("dicom_study_list", "dicom_study_list")})
        self.add_flow(selector, findings, {("study_selected_series_list", "study_selected_series_list")})
        self.add_flow(selector, report, {("study_selected_series_list", "study_selected_series_list")})
        self.add_flow(findings, report, {("text", "text")})
        self.add_flow(findings, heat_maps, {("grounding", "grounding")})


if __name__ == "__main__":
    MeDSLIPCXRApp().run()
