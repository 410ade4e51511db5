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
"""A synthetic chest X-ray world: images, reports, triplets, masks, boxes and datalists for every task.

Frontal radiographs are drawn with plausible anatomy (lungs, heart, mediastinum and spine, diaphragm domes,
costophrenic angles, ribs, clavicles) and per-image variation; seven findings with distinct visual signatures are
placed at named anatomical locations; each image gets a free-text report with synonyms, negations, hedged
(uncertain) and unmentioned findings, and the ground-truth triplets it implies. It is a test bed for the whole
pipeline, not a model of clinical reality.

Radiological convention: the patient's right is on the image's left.

Command line::

    python -m medslip_monai.data.synthetic --out DIR --num 2000 --seed 0

Modules: ``geometry`` (anatomical landmarks, the lungs and heart of a case, the canvas), ``findings`` (one spec
per finding: sampling, drawing, report sentence, negations, impression), ``rendering`` (the normal anatomy and the
findings drawn on it), ``reports``, ``cases`` (one case drawn and boxed), ``world`` (files and datalists) and
``cli`` (the command line).
"""

from __future__ import annotations

from medslip_monai.data.synthetic.cases import render_case
from medslip_monai.data.synthetic.cli import main
from medslip_monai.data.synthetic.findings import FINDINGS
from medslip_monai.data.synthetic.world import WORLD_VERSION, ensure_world, generate_world, prepare_world

__all__ = ["FINDINGS", "WORLD_VERSION", "generate_world", "ensure_world", "prepare_world", "render_case", "main"]
