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
"""The bundle in applications: what MONAI Label and MONAI Deploy serve.

``medslip_monai.apps.assist`` (core environment) loads the bundle's models and turns their outputs into findings and
label maps; ``medslip_monai.apps.label`` needs ``pip install ".[label]"`` and ``medslip_monai.apps.deploy`` needs
``pip install ".[deploy]"``, each in its own environment (their pydicom majors conflict). Nothing here is imported
by ``import medslip_monai``.
"""
