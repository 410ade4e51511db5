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
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["FINDINGS", "WORLD_VERSION", "generate_world", "ensure_world", "render_case", "main"]

WORLD_VERSION = 4
#: The synthetic findings; each is also the name of its MeDSLIP pathology entity. Bit ``k`` of a label map (masks)
#: or box map (filled boxes) is finding ``k``.
FINDINGS = ("effusion", "pneumothorax", "consolidation", "nodule", "cardiomegaly", "edema", "atelectasis")
_PREVALENCE = {
    "effusion": 0.25,
    "pneumothorax": 0.2,
    "consolidation": 0.25,
    "nodule": 0.2,
    "cardiomegaly": 0.25,
    "edema": 0.2,
    "atelectasis": 0.2,
}
_MENTION_PRESENT = (("positive", 0.86), ("uncertain", 0.08), ("unmentioned", 0.06))
_MENTION_ABSENT = (("negated", 0.45), ("unmentioned", 0.55))
_SPLITS = ("training", "validation", "test")
_LOBES = {
    "upper_right_lobe": ("right", "right upper lobe", 0.30),
    "middle_right_lobe": ("right", "right middle lobe", 0.50),
    "lower_right_lobe": ("right", "right lower lobe", 0.64),
    "upper_left_lobe": ("left", "left upper lobe", 0.32),
    "lower_left_lobe": ("left", "left lower lobe", 0.64),
}
_ZONES = {"upper": 0.28, "mid": 0.45, "lower": 0.60}


# ----------------------------------------------------------------------------------------------------- geometry
@dataclass
class _Lung:
    side: str  # "right" (image left) or "left" (image right)
    lateral: float  # u of the lateral wall
    medial: float  # u of the medial border
    apex: float  # v of the apex
    dome: float  # v of the diaphragm dome
    angle: float  # v of the costophrenic angle

    def u(self, t: float) -> float:
        """u at fraction ``t`` from the medial (0) to the lateral (1) border."""
        return self.medial + t * (self.lateral - self.medial)

    def outline(self, inset: float = 0.0) -> list[tuple[float, float]]:
        """Polygon of the lung field in (u, v), optionally shrunk toward its centre by ``inset``."""
        points = [
            (self.u(0.0), self.apex + 0.10),
            (self.u(0.22), self.apex + 0.012),
            (self.u(0.45), self.apex),
            (self.u(0.70), self.apex + 0.03),
            (self.u(0.93), self.apex + 0.13),
            (self.u(1.0), self.apex + 0.32),
            (self.u(1.0), self.angle - 0.08),
            (self.u(0.985), self.angle),
            (self.u(0.80), self.dome + 0.02),
            (self.u(0.55), self.dome),
            (self.u(0.25), self.dome + 0.02),
            (self.u(0.0), self.dome + 0.05),
        ]
        if inset <= 0:
            return points
        cu, cv = self.u(0.5), (self.apex + self.dome) / 2
        half_w, half_h = abs(self.lateral - self.medial) / 2, (self.dome - self.apex) / 2
        return [(cu + (pu - cu) * (1 - inset / half_w), cv + (pv - cv) * (1 - inset / half_h)) for pu, pv in points]


@dataclass
class _Case:
    """Everything drawn for one image, in normalised (u, v) coordinates."""

    lungs: dict[str, _Lung]
    heart_centre: tuple[float, float]
    heart_half: tuple[float, float]
    findings: dict[str, list[dict]] = field(default_factory=dict)  # finding -> instances
    mentions: dict[str, str] = field(default_factory=dict)


class _Canvas:
    """Draws shapes given in (u, v) into float masks of ``size`` x ``size`` pixels."""

    def __init__(self, size: int) -> None:
        self.size = size

    def px(self, points):
        return [(u * self.size, v * self.size) for u, v in points]

    def mask(self, draw_fn, blur: float = 0.0) -> np.ndarray:
        image = Image.new("L", (self.size, self.size), 0)
        draw_fn(ImageDraw.Draw(image))
        if blur > 0:
            image = image.filter(ImageFilter.GaussianBlur(blur * self.size / 256))
        return np.asarray(image, dtype=np.float32) / 255.0

    def polygon(self, points, blur: float = 0.0) -> np.ndarray:
        return self.mask(lambda d: d.polygon(self.px(points), fill=255), blur)

    def ellipse(self, centre, half, blur: float = 0.0) -> np.ndarray:
        (cu, cv), (hu, hv) = centre, half
        return self.mask(lambda d: d.ellipse(self.px([(cu - hu, cv - hv), (cu + hu, cv + hv)]), fill=255), blur)

    def lines(self, polylines, width: float, blur: float = 0.0) -> np.ndarray:
        pixels = max(1, int(round(width * self.size)))

        def draw(d):
            for line in polylines:
                d.line(self.px(line), fill=255, width=pixels, joint="curve")

        return self.mask(draw, blur)

    def smooth_noise(self, rng: np.random.Generator, cells: int) -> np.ndarray:
        """Zero-mean smooth noise in [-1, 1] from a ``cells`` x ``cells`` random grid."""
        grid = Image.fromarray(rng.uniform(0, 255, (cells, cells)).astype(np.uint8))
        field_ = np.asarray(grid.resize((self.size, self.size), Image.BICUBIC), dtype=np.float32)
        return (field_ - 127.5) / 127.5


def _composite(image: np.ndarray, alpha: np.ndarray, value) -> np.ndarray:
    return image * (1 - alpha) + alpha * value


# ----------------------------------------------------------------------------------------------- case sampling
def _sample_case(rng: np.random.Generator) -> _Case:
    centre = 0.5 + rng.normal(0, 0.012)
    apex = 0.12 + rng.normal(0, 0.012)
    dome_right = 0.64 + rng.normal(0, 0.015)
    lungs = {}
    for side, sign, dome in (("right", -1, dome_right), ("left", 1, dome_right + 0.025 + rng.normal(0, 0.01))):
        lungs[side] = _Lung(
            side=side,
            lateral=centre + sign * (0.37 + rng.normal(0, 0.012)),
            medial=centre + sign * (0.065 + rng.normal(0, 0.006)),
            apex=apex + rng.normal(0, 0.006),
            dome=dome,
            angle=dome + 0.10 + rng.normal(0, 0.01),
        )
    thorax = lungs["left"].lateral - lungs["right"].lateral
    ratio = rng.uniform(0.38, 0.47)
    half_h = rng.uniform(0.10, 0.12)
    case = _Case(lungs, (0.0, 0.0), (ratio * thorax / 2, half_h))

    present = {f: rng.random() < _PREVALENCE[f] for f in FINDINGS}
    for finding in FINDINGS:
        options = _MENTION_PRESENT if present[finding] else _MENTION_ABSENT
        names, weights = zip(*options)
        case.mentions[finding] = str(rng.choice(names, p=weights))
        if present[finding]:
            case.findings[finding] = _sample_instances(finding, rng)
    if "cardiomegaly" in case.findings:
        subtle = case.mentions["cardiomegaly"] == "uncertain"
        ratio = rng.uniform(0.53, 0.56) if subtle else rng.uniform(0.58, 0.68)
        case.heart_half = (ratio * thorax / 2, half_h + rng.uniform(0.01, 0.025))
    case.heart_centre = (centre + 0.3 * case.heart_half[0], dome_right + 0.01 - case.heart_half[1] * 0.75)
    return case


def _sample_instances(finding: str, rng: np.random.Generator) -> list[dict]:
    side = str(rng.choice(["left", "right"]))
    if finding == "effusion":
        sides = ["left", "right"] if rng.random() < 0.25 else [side]
        return [{"side": s, "height": rng.uniform(0.07, 0.17)} for s in sides]
    if finding == "pneumothorax":
        return [{"side": side, "depth": rng.uniform(0.035, 0.07), "extent": rng.uniform(0.2, 0.34)}]
    if finding == "consolidation":
        return [{"lobe": str(rng.choice(list(_LOBES)))}]
    if finding == "nodule":
        count = 2 if rng.random() < 0.15 else 1
        picks = rng.choice(len(_ZONES) * 2, size=count, replace=False)
        sides_zones = [(("right", "left")[p // 3], list(_ZONES)[p % 3]) for p in picks]
        return [{"side": s, "zone": z, "radius": rng.uniform(0.025, 0.042)} for s, z in sides_zones]
    if finding == "cardiomegaly":
        return [{}]
    if finding == "edema":
        return [{"severity": rng.uniform(0.7, 1.0)}]
    sides = ["left", "right"] if rng.random() < 0.2 else [side]  # atelectasis
    return [{"side": s} for s in sides]


# ---------------------------------------------------------------------------------------------------- rendering
def _render(case: _Case, size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Returns the image in [0, 1] and a mask per present finding."""
    canvas = _Canvas(size)
    v = np.linspace(0, 1, size, dtype=np.float32)[:, None]
    image = np.full((size, size), 0.03, np.float32)

    body = canvas.ellipse((0.5, 0.62), (0.47 + rng.normal(0, 0.01), 0.62), blur=4)
    shoulders = canvas.ellipse((0.5, 0.16), (0.49, 0.12), blur=4)
    image = _composite(image, np.maximum(body, shoulders), 0.45)

    lungs = {side: canvas.polygon(lung.outline(), blur=2.0) for side, lung in case.lungs.items()}
    lung_field = np.maximum(lungs["left"], lungs["right"])
    texture = 0.025 * canvas.smooth_noise(rng, 12) + 0.012 * canvas.smooth_noise(rng, 40)
    image = image - lung_field * (0.31 + texture)

    image = image + 0.07 * canvas.lines(_ribs(case, rng), width=0.017, blur=1.2) * (0.35 + 0.65 * lung_field)
    image = image + 0.055 * _vessels(canvas, case, rng) * lung_field

    image = _composite(image, canvas.polygon(_mediastinum(case), blur=3), 0.58)
    spine = canvas.polygon([(0.475, 0.0), (0.525, 0.0), (0.53, 1.0), (0.47, 1.0)], blur=1.5)
    discs = 0.5 + 0.5 * np.cos(2 * np.pi * v / 0.045)
    image = _composite(image, spine, 0.60 + 0.05 * discs)
    clavicles = [[(0.46, 0.15), (0.32, 0.12), (0.16, 0.105)], [(0.54, 0.15), (0.68, 0.12), (0.84, 0.105)]]
    image = image + 0.14 * canvas.lines(clavicles, width=0.024, blur=1.5)

    heart = canvas.ellipse(case.heart_centre, case.heart_half, blur=2.5)
    image = _composite(image, 0.92 * heart, 0.62)
    bubble = canvas.ellipse((case.lungs["left"].u(0.45), case.lungs["left"].dome + 0.06), (0.05, 0.03), blur=2)
    image = image - 0.12 * bubble * float(rng.random() < 0.6)

    masks = {}
    for finding, instances in case.findings.items():
        strength = 0.6 if case.mentions[finding] == "uncertain" else 1.0
        if finding == "cardiomegaly":
            masks[finding] = (heart > 0.5).astype(np.float32)
            continue
        image, masks[finding] = _DRAW[finding](canvas, case, instances, image, lungs, strength, rng)

    image = (
        np.asarray(
            Image.fromarray(np.clip(image * 255, 0, 255).astype(np.uint8)).filter(
                ImageFilter.GaussianBlur(0.6 * size / 256)
            ),
            dtype=np.float32,
        )
        / 255
    )
    image = image + rng.normal(0, 0.012, image.shape).astype(np.float32)
    gamma = rng.uniform(0.85, 1.15)
    image = np.clip(image, 0, 1) ** gamma * rng.uniform(0.9, 1.05) + rng.normal(0, 0.02)
    return np.clip(image, 0, 1), masks


def _ribs(case: _Case, rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    ribs = []
    for lung in case.lungs.values():
        start, spacing = lung.apex - 0.01 + rng.normal(0, 0.005), 0.062 + rng.normal(0, 0.003)
        for k in range(9):
            v0 = start + k * spacing
            ribs.append([(lung.u(t), v0 - 0.035 * t + 0.11 * t * t) for t in np.linspace(-0.05, 1.05, 8)])
    return ribs


def _vessels(canvas: _Canvas, case: _Case, rng: np.random.Generator) -> np.ndarray:
    branches = []
    for lung in case.lungs.values():
        hilum = (lung.u(0.1), (lung.apex + lung.dome) / 2 + 0.02)
        for _ in range(9):
            angle = rng.uniform(-0.5 * np.pi, 0.75 * np.pi)
            direction = 1 if lung.lateral > lung.medial else -1
            point, path = hilum, [hilum]
            for _ in range(3):
                angle += rng.normal(0, 0.25)
                length = rng.uniform(0.05, 0.09)
                point = (point[0] + direction * length * math.cos(angle), point[1] - length * math.sin(angle) * 0.8)
                path.append(point)
            branches.append(path)
    return canvas.lines(branches, width=0.008, blur=1.0)


def _mediastinum(case: _Case) -> list[tuple[float, float]]:
    right, left = case.lungs["right"].medial, case.lungs["left"].medial
    return [
        (right + 0.02, 0.0),
        (left - 0.02, 0.0),
        (left, 0.25),
        (left + 0.01, 0.42),
        (right - 0.01, 0.45),
        (right, 0.25),
    ]


def _draw_effusion(canvas, case, instances, image, lungs, strength, rng):
    mask = np.zeros_like(image)
    for inst in instances:
        lung = case.lungs[inst["side"]]
        top = lung.angle - inst["height"] - 0.05
        surface = [(lung.u(t), top + 0.05 * (1 - t) ** 0.5 * 1.2 + 0.02 * t) for t in np.linspace(0, 1, 9)]
        surface[-1] = (lung.u(1.02), top - 0.02)  # the meniscus climbs the lateral wall
        region = surface + [(lung.u(1.02), lung.angle + 0.015), (lung.u(0.0), lung.angle + 0.015)]
        fluid = canvas.polygon(region, blur=2.5) * np.clip(lungs[inst["side"]] * 1.6, 0, 1)
        image = _composite(image, strength * 0.95 * fluid, 0.55)
        mask = np.maximum(mask, fluid > 0.5)
    return image, mask.astype(np.float32)


def _draw_pneumothorax(canvas, case, instances, image, lungs, strength, rng):
    mask = np.zeros_like(image)
    for inst in instances:
        lung = case.lungs[inst["side"]]
        collapsed = canvas.polygon(lung.outline(inset=inst["depth"]), blur=0.8)
        zone = np.linspace(0, 1, canvas.size, dtype=np.float32)[:, None] < lung.apex + inst["extent"]
        air = lungs[inst["side"]] * (1 - collapsed) * zone
        image = _composite(image, strength * air, 0.05)
        edge = [p for p in lung.outline(inset=inst["depth"]) if p[1] < lung.apex + inst["extent"]]
        pleura = canvas.lines([edge], width=0.005, blur=0.6) * zone
        image = image + strength * 0.3 * pleura
        mask = np.maximum(mask, air > 0.5)
    return image, mask.astype(np.float32)


def _draw_consolidation(canvas, case, instances, image, lungs, strength, rng):
    mask = np.zeros_like(image)
    for inst in instances:
        side, _, v_centre = _LOBES[inst["lobe"]]
        lung = case.lungs[side]
        centre = (lung.u(0.55), v_centre + rng.normal(0, 0.015))
        blob = np.zeros_like(image)
        for _ in range(rng.integers(4, 8)):
            offset = (centre[0] + rng.normal(0, 0.035), centre[1] + rng.normal(0, 0.035))
            blob = np.maximum(blob, canvas.ellipse(offset, (rng.uniform(0.04, 0.07), rng.uniform(0.035, 0.06))))
        blob = (
            np.asarray(
                Image.fromarray((blob * 255).astype(np.uint8)).filter(
                    ImageFilter.GaussianBlur(3.0 * canvas.size / 256)
                ),
                dtype=np.float32,
            )
            / 255
            * lungs[side]
        )
        bronchi = []
        for _ in range(3):
            angle = rng.uniform(0, 2 * np.pi)
            bronchi.append([centre, (centre[0] + 0.05 * math.cos(angle), centre[1] + 0.05 * math.sin(angle))])
        image = _composite(image, strength * 0.9 * blob, 0.52)
        image = image - strength * 0.12 * canvas.lines(bronchi, width=0.006, blur=0.7) * (blob > 0.6)
        mask = np.maximum(mask, blob > 0.5)
    return image, mask.astype(np.float32)


def _draw_nodule(canvas, case, instances, image, lungs, strength, rng):
    mask = np.zeros_like(image)
    for inst in instances:
        lung = case.lungs[inst["side"]]
        centre = (lung.u(rng.uniform(0.4, 0.75)), _ZONES[inst["zone"]] + rng.normal(0, 0.02))
        disc = canvas.ellipse(centre, (inst["radius"], inst["radius"]), blur=0.8)
        image = _composite(image, strength * 0.9 * disc, 0.58)
        mask = np.maximum(mask, disc > 0.5)
    return image, mask.astype(np.float32)


def _draw_edema(canvas, case, instances, image, lungs, strength, rng):
    severity = instances[0]["severity"] * strength
    u = np.linspace(0, 1, canvas.size, dtype=np.float32)[None, :]
    v = np.linspace(0, 1, canvas.size, dtype=np.float32)[:, None]
    haze = np.zeros_like(image)
    for lung in case.lungs.values():
        hu, hv = lung.u(0.2), (lung.apex + lung.dome) / 2 + 0.03
        haze = np.maximum(haze, np.exp(-(((u - hu) / 0.13) ** 2 + ((v - hv) / 0.16) ** 2)))
    lung_field = np.maximum(lungs["left"], lungs["right"])
    haze = haze * lung_field * (0.85 + 0.15 * canvas.smooth_noise(rng, 30))
    image = image + severity * 0.26 * haze
    kerley = []
    for lung in case.lungs.values():
        for _ in range(4):
            v0 = lung.angle - rng.uniform(0.05, 0.16)
            kerley.append([(lung.u(1.0), v0), (lung.u(0.86), v0 + rng.normal(0, 0.004))])
    image = image + severity * 0.12 * canvas.lines(kerley, width=0.004, blur=0.5) * lung_field
    return image, (haze > 0.4).astype(np.float32)


def _draw_atelectasis(canvas, case, instances, image, lungs, strength, rng):
    mask = np.zeros_like(image)
    for inst in instances:
        lung = case.lungs[inst["side"]]
        centre = (lung.u(rng.uniform(0.45, 0.7)), lung.dome - rng.uniform(0.05, 0.11))
        angle, half = rng.uniform(-0.35, 0.35), rng.uniform(0.07, 0.12)
        line = [
            (centre[0] - half * math.cos(angle), centre[1] - half * math.sin(angle)),
            (centre[0] + half * math.cos(angle), centre[1] + half * math.sin(angle)),
        ]
        band = canvas.lines([line], width=rng.uniform(0.02, 0.03), blur=1.0) * lungs[inst["side"]]
        image = _composite(image, strength * 0.9 * band, 0.5)
        mask = np.maximum(mask, band > 0.4)
    return image, mask.astype(np.float32)


_DRAW = {
    "effusion": _draw_effusion,
    "pneumothorax": _draw_pneumothorax,
    "consolidation": _draw_consolidation,
    "nodule": _draw_nodule,
    "edema": _draw_edema,
    "atelectasis": _draw_atelectasis,
}


# ------------------------------------------------------------------------------------------------------ reports
def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _size_word(rng):
    return _pick(rng, ["small", "moderate", "small to moderate", "large"])


def _finding_sentence(finding: str, instances: list[dict], mention: str, rng) -> tuple[str, list[list]]:
    """One report sentence for a finding and the triplets it states (uncertain mentions state none)."""
    if mention == "negated":
        return _pick(rng, _NEGATIONS[finding])
    side = instances[0].get("side", "")
    bilateral = len({i.get("side") for i in instances}) == 2
    if finding == "effusion":
        if mention == "uncertain":
            return _pick(
                rng,
                [
                    (f"Possible small {side} pleural effusion.", []),
                    (f"A trace {side} effusion cannot be excluded.", []),
                ],
            )
        if bilateral:
            return (
                f"Bilateral {_size_word(rng)} pleural effusions.",
                [["left_pleural", "effusion", 1], ["right_pleural", "effusion", 1]],
            )
        return _pick(
            rng,
            [
                (f"There is a {_size_word(rng)} {side} pleural effusion.", [[f"{side}_pleural", "effusion", 1]]),
                (
                    f"Blunting of the {side} costophrenic angle consistent with a {_size_word(rng)} effusion.",
                    [[f"{side}_costophrenic", "blunt", 1], [f"{side}_costophrenic", "effusion", 1]],
                ),
                (
                    f"{_size_word(rng).capitalize()} amount of {side} pleural fluid.",
                    [[f"{side}_pleural", "effusion", 1]],
                ),
            ],
        )
    if finding == "pneumothorax":
        if mention == "uncertain":
            return _pick(
                rng,
                [(f"Possible tiny {side} apical pneumothorax.", []), (f"Questionable {side} apical pneumothorax.", [])],
            )
        triplets = [[f"{side}_apical_lung", "pneumothorax", 1]]
        return _pick(
            rng,
            [
                (f"There is a {_size_word(rng)} {side} apical pneumothorax.", triplets),
                (f"{_size_word(rng).capitalize()} pneumothorax at the {side} apex.", triplets),
                (f"A {side} apical pneumothorax is noted, measuring approximately {rng.integers(1, 4)} cm.", triplets),
            ],
        )
    if finding == "consolidation":
        lobe = instances[0]["lobe"]
        name = _LOBES[lobe][1]
        if mention == "uncertain":
            return f"Patchy opacity in the {name}, possibly early consolidation.", [[lobe, "opacity", 1]]
        return _pick(
            rng,
            [
                (f"There is consolidation in the {name}.", [[lobe, "consolidation", 1]]),
                (f"{name.capitalize()} airspace consolidation.", [[lobe, "consolidation", 1]]),
                (
                    f"Dense opacification of the {name} compatible with consolidation.",
                    [[lobe, "opacity", 1], [lobe, "consolidation", 1]],
                ),
            ],
        )
    if finding == "nodule":
        if mention == "uncertain":
            zone = f"{instances[0]['side']} {instances[0]['zone']} lung"
            return f"Possible small nodule in the {zone}, which may represent a nipple shadow.", []
        sentences, triplets = [], []
        for inst in instances:
            zone, anatomy = f"{inst['side']} {inst['zone']} lung", f"{inst['side']}_{inst['zone']}_lung"
            mm = int(round(inst["radius"] * 2 * 350))
            sentence = _pick(
                rng,
                [
                    f"A {mm} mm nodule is seen in the {zone}.",
                    f"There is a {mm} mm nodular opacity in the {zone}.",
                    f"Well-circumscribed {mm} mm nodule projecting over the {zone}.",
                ],
            )
            sentences.append(sentence)
            triplets.append([anatomy, "nodule", 1])
            if "opacity" in sentence:
                triplets.append([anatomy, "opacity", 1])
        return " ".join(sentences), triplets
    if finding == "cardiomegaly":
        if mention == "uncertain":
            return "The heart size is borderline enlarged.", [["heart_size", "borderline", 1]]
        return _pick(
            rng,
            [
                ("The heart is enlarged.", [["heart_size", "cardiomegaly", 1]]),
                (f"There is {_pick(rng, ['mild', 'moderate'])} cardiomegaly.", [["unspecified", "cardiomegaly", 1]]),
                ("Enlarged cardiac silhouette.", [["heart_size", "cardiomegaly", 1]]),
            ],
        )
    if finding == "edema":
        if mention == "uncertain":
            return "Hazy perihilar opacities may reflect mild edema.", [["hilar_unspec", "opacity", 1]]
        return _pick(
            rng,
            [
                (f"There is {_pick(rng, ['mild', 'moderate'])} pulmonary edema.", [["pulmonary", "edema", 1]]),
                (
                    "Bilateral perihilar opacities consistent with interstitial edema.",
                    [["left_hilar", "opacity", 1], ["right_hilar", "opacity", 1], ["interstitium", "edema", 1]],
                ),
                ("Findings consistent with moderate pulmonary edema.", [["pulmonary", "edema", 1]]),
            ],
        )
    # atelectasis
    if mention == "uncertain":
        return f"Minimal {side} basilar opacity, possibly atelectasis.", [[f"{side}_lower_lung", "opacity", 1]]
    if bilateral:
        return "Bibasilar atelectasis.", [["lung_bases", "atelectasis", 1]]
    return _pick(
        rng,
        [
            (
                f"Linear opacity at the {side} base likely reflects subsegmental atelectasis.",
                [[f"{side}_lower_lung", "opacity", 1], [f"{side}_lower_lung", "atelectasis", 1]],
            ),
            (f"Plate-like atelectasis in the {side} lower lung.", [[f"{side}_lower_lung", "atelectasis", 1]]),
            (f"{side.capitalize()} basilar atelectasis.", [[f"{side}_lower_lung", "atelectasis", 1]]),
        ],
    )


_NEGATIONS = {
    "effusion": [
        ("No pleural effusion.", [["pleural_unspec", "effusion", 0]]),
        ("There is no pleural effusion.", [["pleural_unspec", "effusion", 0]]),
    ],
    "pneumothorax": [
        ("No pneumothorax.", [["unspecified", "pneumothorax", 0]]),
        ("There is no evidence of pneumothorax.", [["unspecified", "pneumothorax", 0]]),
    ],
    "consolidation": [
        ("No focal consolidation.", [["unspecified", "consolidation", 0]]),
        ("There is no consolidation.", [["unspecified", "consolidation", 0]]),
    ],
    "nodule": [
        ("No pulmonary nodules.", [["pulmonary", "nodule", 0]]),
        ("No suspicious pulmonary nodule or mass.", [["pulmonary", "nodule", 0], ["unspecified", "mass", 0]]),
    ],
    "cardiomegaly": [
        ("Heart size is normal.", [["heart_size", "cardiomegaly", 0], ["heart_size", "normal", 1]]),
        ("No cardiomegaly.", [["unspecified", "cardiomegaly", 0]]),
    ],
    "edema": [
        ("No pulmonary edema.", [["pulmonary", "edema", 0]]),
        ("No evidence of edema.", [["unspecified", "edema", 0]]),
    ],
    "atelectasis": [("No atelectasis.", [["unspecified", "atelectasis", 0]])],
}


def _impression(finding: str, instances: list[dict]) -> tuple[str, list[list]]:
    """The impression line of a present finding and the triplets it states."""
    first = instances[0]
    sides = sorted({i.get("side") for i in instances if i.get("side")})
    if finding == "effusion":
        if len(sides) == 2:
            return "Bilateral pleural effusions.", [["left_pleural", "effusion", 1], ["right_pleural", "effusion", 1]]
        return f"{sides[0].capitalize()} pleural effusion.", [[f"{sides[0]}_pleural", "effusion", 1]]
    if finding == "pneumothorax":
        return f"{first['side'].capitalize()} apical pneumothorax.", [[f"{first['side']}_apical_lung", finding, 1]]
    if finding == "consolidation":
        return f"{_LOBES[first['lobe']][1].capitalize()} consolidation.", [[first["lobe"], finding, 1]]
    if finding == "nodule":
        return (
            f"{first['side'].capitalize()} {first['zone']} lung nodule.",
            [[f"{first['side']}_{first['zone']}_lung", finding, 1]],
        )
    if finding == "cardiomegaly":
        return "Cardiomegaly.", [["unspecified", finding, 1]]
    if finding == "edema":
        return "Pulmonary edema.", [["pulmonary", finding, 1]]
    if len(sides) == 2:  # atelectasis
        return "Bibasilar atelectasis.", [["lung_bases", finding, 1]]
    return f"{sides[0].capitalize()} basilar atelectasis.", [[f"{sides[0]}_lower_lung", finding, 1]]


_INDICATIONS = [
    "Shortness of breath.",
    "Cough and fever.",
    "Chest pain.",
    "Preoperative evaluation.",
    "Follow-up.",
    "Dyspnea on exertion.",
]
_LUNG_FINDINGS = ("pneumothorax", "consolidation", "nodule", "edema", "atelectasis")
_ORDER = ("cardiomegaly", "consolidation", "nodule", "edema", "atelectasis", "effusion", "pneumothorax")


def _write_report(case: _Case, rng: np.random.Generator) -> tuple[str, list[list]]:
    """Free-text report (INDICATION, COMPARISON, FINDINGS, IMPRESSION) and its ground-truth triplets."""
    sentences, triplets = [], []
    for finding in _ORDER:
        mention = case.mentions[finding]
        if mention == "unmentioned":
            continue
        sentence, stated = _finding_sentence(finding, case.findings.get(finding, [{}]), mention, rng)
        sentences.append(sentence)
        triplets.extend(stated)
    lung_mentioned = any(case.mentions[f] in ("positive", "uncertain") for f in _LUNG_FINDINGS)
    if not lung_mentioned and rng.random() < 0.7:
        sentences.insert(0, "The lungs are clear.")
        triplets.append(["pulmonary", "clear", 1])
    if case.mentions["cardiomegaly"] not in ("positive", "uncertain") and rng.random() < 0.5:
        sentences.insert(0, "Normal cardiomediastinal silhouette.")
        triplets.append(["mediastinal", "normal", 1])
    stated = [f for f in FINDINGS if case.mentions[f] == "positive"]
    if stated:
        lines = [_impression(f, case.findings[f]) for f in _ORDER if f in stated]
        impression = " ".join(line for line, _ in lines)
        triplets.extend(t for _, stated_triplets in lines for t in stated_triplets)
    else:
        impression = "No acute cardiopulmonary process."
        triplets.append(["cardiopulmonary", "process", 0])
    report = (
        f"INDICATION: {_pick(rng, _INDICATIONS)}\nCOMPARISON: {_pick(rng, ['None.', 'Prior radiograph.'])}\n"
        f"FINDINGS: {' '.join(sentences)}\nIMPRESSION: {impression}"
    )
    unique = sorted({tuple(t) for t in triplets})
    return report, [list(t) for t in unique]


# ------------------------------------------------------------------------------------------------------- world
def render_case(seed: int, index: int, size: int = 256) -> dict:
    """Draw case ``index`` of the world with ``seed``: image (uint8), per-finding masks (bool), report, truth."""
    rng = np.random.default_rng([seed, index])
    case = _sample_case(rng)
    image, masks = _render(case, size, rng)
    report, triplets = _write_report(case, rng)
    boxes = {}
    for finding, mask in masks.items():
        rows, cols = np.nonzero(mask)
        if rows.size == 0:  # drawn entirely outside the lung field; keep the label honest
            continue
        boxes[finding] = _component_boxes(mask > 0.5)
    return {
        "image": (image * 255).round().astype(np.uint8),
        "masks": {f: m > 0.5 for f, m in masks.items() if f in boxes},
        "report": report,
        "triplets": triplets,
        "labels": [int(f in boxes) for f in FINDINGS],
        "mentions": dict(case.mentions),
        "boxes": boxes,
    }


def _component_boxes(mask: np.ndarray) -> list[list[int]]:
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


def _write_case(job: tuple[str, int, int, int, str]) -> dict:
    split, seed, index, size, out = job
    case = render_case(seed, index, size)
    name = f"{split}_{index:05d}"
    root = Path(out)
    Image.fromarray(case["image"]).save(root / "images" / f"{name}.png")
    packed = np.zeros((size, size), np.uint8)
    boxed = np.zeros((size, size), np.uint8)
    mask_files = {}
    for bit, finding in enumerate(FINDINGS):
        if finding in case["masks"]:
            packed |= case["masks"][finding].astype(np.uint8) << bit
            for x, y, w, h in case["boxes"][finding]:
                boxed[y : y + h, x : x + w] |= np.uint8(1 << bit)
            mask_files[finding] = f"masks/{name}_{finding}.png"
            Image.fromarray(case["masks"][finding].astype(np.uint8) * 255).save(root / mask_files[finding])
    Image.fromarray(packed).save(root / "labelmaps" / f"{name}.png")
    Image.fromarray(boxed).save(root / "boxmaps" / f"{name}.png")
    return {
        "image": f"images/{name}.png",
        "report": case["report"],
        "triplets": case["triplets"],
        "label": case["labels"],
        "labelmap": f"labelmaps/{name}.png",
        "boxmap": f"boxmaps/{name}.png",
        "masks": mask_files,
        "boxes": case["boxes"],
        "mentions": case["mentions"],
    }


def _datalists(cases: dict[str, list[dict]]) -> dict[str, dict]:
    pretrain, classification, grounding, segmentation = {}, {}, {}, {}
    for split, items in cases.items():
        pretrain[split] = [
            {k: c[k] for k in ("image", "report", "triplets", "label", "labelmap", "boxmap")} for c in items
        ]
        classification[split] = [{"image": c["image"], "label": c["label"]} for c in items]
        grounding[split] = [
            {"image": c["image"], "finding": f, "boxes": c["boxes"][f], "mask": c["masks"][f]}
            for c in items
            for f in FINDINGS
            if f in c["masks"]
        ]
        segmentation[split] = [{"image": c["image"], "label": c["labelmap"]} for c in items]
    return {
        "pretrain": pretrain,
        "classification": classification,
        "grounding": grounding,
        "segmentation": segmentation,
    }


def generate_world(
    out: str | os.PathLike,
    num: int = 2000,
    seed: int = 0,
    num_val: int | None = None,
    num_test: int | None = None,
    size: int = 256,
    workers: int | None = None,
) -> dict:
    """Generate a synthetic world into ``out`` and return its description (also written to ``world.json``).

    The training split is drawn with ``seed``; validation and test with ``seed + 1`` and ``seed + 2``, so held-out
    images come from other random streams. Files: ``images/*.png``, ``labelmaps/*.png`` and ``boxmaps/*.png``
    (bit ``k`` = finding ``k``: its mask, or its filled boxes), ``masks/<image>_<finding>.png``, ``truth.json``
    and the datalists ``pretrain.json``, ``classification.json``, ``grounding.json`` and ``segmentation.json``
    (paths relative to ``out``).
    """
    num_val = max(50, num // 5) if num_val is None else num_val
    num_test = num_val if num_test is None else num_test
    root = Path(out)
    for folder in ("images", "labelmaps", "boxmaps", "masks"):
        shutil.rmtree(root / folder, ignore_errors=True)
        (root / folder).mkdir(parents=True)
    jobs = {
        split: [(split, seed + offset, i, size, str(root)) for i in range(count)]
        for offset, (split, count) in enumerate(zip(_SPLITS, (num, num_val, num_test)))
    }
    start = time.perf_counter()
    workers = workers or os.cpu_count() or 1
    with ProcessPoolExecutor(workers) if workers > 1 else _Serial() as pool:
        cases = {split: list(pool.map(_write_case, split_jobs, chunksize=16)) for split, split_jobs in jobs.items()}
    seconds = time.perf_counter() - start
    for name, datalist in _datalists(cases).items():
        (root / f"{name}.json").write_text(json.dumps(datalist, indent=1))
    truth = {
        c["image"]: {k: c[k] for k in ("label", "mentions", "boxes", "triplets")} for v in cases.values() for c in v
    }
    (root / "truth.json").write_text(json.dumps(truth))
    world = {
        "generator": "medslip_monai.data.synthetic",
        "version": WORLD_VERSION,
        "parameters": {"num": num, "num_val": num_val, "num_test": num_test, "seed": seed, "size": size},
        "seeds": {split: seed + offset for offset, split in enumerate(_SPLITS)},
        "findings": list(FINDINGS),
        "counts": {split: len(items) for split, items in cases.items()},
        "prevalence": {
            split: {f: float(np.mean([c["label"][k] for c in items])) for k, f in enumerate(FINDINGS)}
            for split, items in cases.items()
        },
        "images_per_second": round(sum(len(v) for v in cases.values()) / seconds, 1),
        "note": "Synthetic test bed; not a model of clinical reality.",
    }
    (root / "world.json").write_text(json.dumps(world, indent=1))
    return world


class _Serial:
    """Stand-in for a process pool when one worker is asked for."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def map(fn, items, chunksize=1):
        return map(fn, items)


def ensure_world(
    out: str | os.PathLike,
    num: int = 2000,
    seed: int = 0,
    num_val: int | None = None,
    num_test: int | None = None,
    size: int = 256,
    workers: int | None = None,
) -> str:
    """Generate the world in ``out`` unless one with the same parameters is already there; returns ``out``.

    A folder that exists, is not empty and holds no ``world.json`` is refused rather than overwritten.
    """
    root = Path(out)
    wanted = {"num": num, "num_val": max(50, num // 5) if num_val is None else num_val, "seed": seed, "size": size}
    wanted["num_test"] = wanted["num_val"] if num_test is None else num_test
    world_file = root / "world.json"
    if world_file.is_file():
        world = json.loads(world_file.read_text())
        if world.get("version") == WORLD_VERSION and world.get("parameters") == wanted:
            return str(root)
    elif root.is_dir() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty and holds no synthetic world.json; refusing to write into it")
    generate_world(root, num, seed, wanted["num_val"], wanted["num_test"], size, workers)
    return str(root)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--num", type=int, default=2000, help="training images (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training split; held-out splits use seed+1/+2")
    parser.add_argument("--num-val", type=int, default=None, help="validation images (default max(50, num/5))")
    parser.add_argument("--num-test", type=int, default=None, help="test images (default = num-val)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    args = parser.parse_args(argv)
    world = generate_world(args.out, args.num, args.seed, args.num_val, args.num_test, args.size, args.workers)
    print(json.dumps({k: world[k] for k in ("counts", "prevalence", "images_per_second")}, indent=1))


if __name__ == "__main__":
    main()
