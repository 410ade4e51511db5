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
"""One case of the synthetic world: which findings it has and how its report mentions them, drawn and boxed."""

from __future__ import annotations

import numpy as np

from medslip_monai.data.synthetic.findings import FINDING_SPECS, FINDINGS
from medslip_monai.data.synthetic.geometry import Case, sample_anatomy
from medslip_monai.data.synthetic.rendering import render
from medslip_monai.data.synthetic.reports import write_report

__all__ = ["sample_case", "render_case", "component_boxes"]

#: How the report mentions a present finding, with probabilities.
_MENTION_PRESENT = (("positive", 0.86), ("uncertain", 0.08), ("unmentioned", 0.06))
#: How the report mentions an absent finding, with probabilities.
_MENTION_ABSENT = (("negated", 0.45), ("unmentioned", 0.55))


def sample_case(rng: np.random.Generator) -> Case:
    """A chest, the findings it has (each with its spec's prevalence) and how the report mentions each."""
    case = sample_anatomy(rng)
    present = {name: rng.random() < spec.prevalence for name, spec in FINDING_SPECS.items()}
    for name, spec in FINDING_SPECS.items():
        names, weights = zip(*(_MENTION_PRESENT if present[name] else _MENTION_ABSENT))
        case.mentions[name] = str(rng.choice(names, p=weights))
        if present[name]:
            case.findings[name] = spec.sample(rng)
    for name in case.findings:
        FINDING_SPECS[name].remodel(case, rng)
    return case


def render_case(seed: int, index: int, size: int = 256) -> dict:
    """Draw case ``index`` of the world with ``seed``: image (uint8), per-finding masks (bool), report, truth."""
    rng = np.random.default_rng([seed, index])
    case = sample_case(rng)
    image, masks = render(case, size, rng)
    report, triplets = write_report(case, rng)
    boxes = {}
    for finding, mask in masks.items():
        if not mask.any():  # drawn entirely outside the lung field; keep the label honest
            continue
        boxes[finding] = component_boxes(mask > 0.5)
    return {
        "image": (image * 255).round().astype(np.uint8),
        "masks": {f: m > 0.5 for f, m in masks.items() if f in boxes},
        "report": report,
        "triplets": triplets,
        "labels": [int(f in boxes) for f in FINDINGS],
        "mentions": dict(case.mentions),
        "boxes": boxes,
    }


def component_boxes(mask: np.ndarray) -> list[list[int]]:
    """Boxes ``[x, y, w, h]`` of the mask's left and right halves separately (bilateral findings give two)."""
    boxes = []
    half = mask.shape[1] // 2
    for lo, hi in ((0, half), (half, mask.shape[1])):
        rows, cols = np.nonzero(mask[:, lo:hi])
        if rows.size:
            boxes.append(
                [
                    int(cols.min() + lo),
                    int(rows.min()),
                    int(cols.max() - cols.min() + 1),
                    int(rows.max() - rows.min() + 1),
                ]
            )
    if len(boxes) == 2 and boxes[0][0] + boxes[0][2] == half == boxes[1][0]:  # one region crossing the midline
        x0, y0 = boxes[0][0], min(boxes[0][1], boxes[1][1])
        x1 = boxes[1][0] + boxes[1][2]
        y1 = max(boxes[0][1] + boxes[0][3], boxes[1][1] + boxes[1][3])
        boxes = [[x0, y0, x1 - x0, y1 - y0]]
    return boxes
