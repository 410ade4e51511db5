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
"""Reports of the synthetic world: INDICATION, COMPARISON, FINDINGS and IMPRESSION from the findings' specs."""

from __future__ import annotations

import numpy as np

from medslip_monai.data.synthetic.findings import FINDING_SPECS, pick
from medslip_monai.data.synthetic.geometry import Case

__all__ = ["write_report"]

_INDICATIONS = [
    "Shortness of breath.",
    "Cough and fever.",
    "Chest pain.",
    "Preoperative evaluation.",
    "Follow-up.",
    "Dyspnea on exertion.",
]
#: The findings in the order a report states them (each spec's ``report_rank``: heart, lungs, pleura).
_REPORT_ORDER = tuple(sorted(FINDING_SPECS, key=lambda name: FINDING_SPECS[name].report_rank))


def write_report(case: Case, rng: np.random.Generator) -> tuple[str, list[list]]:
    """Free-text report (INDICATION, COMPARISON, FINDINGS, IMPRESSION) and its ground-truth triplets.

    Each mentioned finding gets a sentence: one of its spec's negations when negated, its spec's sentence when
    positive or uncertain. Positive findings are summarised in the impression; the triplets are sorted and unique.
    """
    sentences, triplets = [], []
    for finding in _REPORT_ORDER:
        mention = case.mentions[finding]
        if mention == "unmentioned":
            continue
        spec = FINDING_SPECS[finding]
        if mention == "negated":
            sentence, stated = pick(rng, spec.negations)
        else:
            sentence, stated = spec.sentence(case.findings[finding], mention, rng)
        sentences.append(sentence)
        triplets.extend(stated)
    mentioned = [FINDING_SPECS[f] for f, mention in case.mentions.items() if mention in ("positive", "uncertain")]
    if not any(spec.rules_out_clear_lungs for spec in mentioned) and rng.random() < 0.7:
        sentences.insert(0, "The lungs are clear.")
        triplets.append(["pulmonary", "clear", 1])
    if not any(spec.rules_out_normal_heart for spec in mentioned) and rng.random() < 0.5:
        sentences.insert(0, "Normal cardiomediastinal silhouette.")
        triplets.append(["mediastinal", "normal", 1])
    lines = [FINDING_SPECS[f].impression(case.findings[f]) for f in _REPORT_ORDER if case.mentions[f] == "positive"]
    if lines:
        impression = " ".join(line for line, _ in lines)
        triplets.extend(t for _, stated in lines for t in stated)
    else:
        impression = "No acute cardiopulmonary process."
        triplets.append(["cardiopulmonary", "process", 0])
    report = (
        f"INDICATION: {pick(rng, _INDICATIONS)}\nCOMPARISON: {pick(rng, ['None.', 'Prior radiograph.'])}\n"
        f"FINDINGS: {' '.join(sentences)}\nIMPRESSION: {impression}"
    )
    unique = sorted({tuple(t) for t in triplets})
    return report, [list(t) for t in unique]
