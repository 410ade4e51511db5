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
"""Rendering a case: the normal anatomy, each finding drawn by its spec, then blur, noise and exposure."""

from __future__ import annotations

import math

import numpy as np

from medslip_monai.data.synthetic.findings import FINDING_SPECS
from medslip_monai.data.synthetic.geometry import AnatomyMasks, Canvas, Case, composite

__all__ = ["render"]

#: The spine as a polygon in (u, v), top to bottom down the midline.
_SPINE = [(0.475, 0.0), (0.525, 0.0), (0.53, 1.0), (0.47, 1.0)]
#: The clavicles as polylines in (u, v), each from the sternum out to the shoulder.
_CLAVICLES = [[(0.46, 0.15), (0.32, 0.12), (0.16, 0.105)], [(0.54, 0.15), (0.68, 0.12), (0.84, 0.105)]]


def render(case: Case, size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Draw ``case`` as a ``size`` x ``size`` radiograph.

    Returns:
        The image (float, in [0, 1], brighter is denser) and a mask per present finding (float32, 1 where it lies).
    """
    canvas = Canvas(size)
    image = np.full((size, size), 0.03, np.float32)

    body = canvas.ellipse((0.5, 0.62), (0.47 + rng.normal(0, 0.01), 0.62), blur=4)
    shoulders = canvas.ellipse((0.5, 0.16), (0.49, 0.12), blur=4)
    image = composite(image, np.maximum(body, shoulders), 0.45)

    lungs = {side: canvas.polygon(lung.outline(), blur=2.0) for side, lung in case.lungs.items()}
    lung_field = np.maximum(lungs["left"], lungs["right"])
    texture = 0.025 * canvas.smooth_noise(rng, 12) + 0.012 * canvas.smooth_noise(rng, 40)
    image = image - lung_field * (0.31 + texture)

    image = image + 0.07 * canvas.lines(_ribs(case, rng), width=0.017, blur=1.2) * (0.35 + 0.65 * lung_field)
    image = image + 0.055 * _vessels(canvas, case, rng) * lung_field

    image = composite(image, canvas.polygon(_mediastinum(case), blur=3), 0.58)
    discs = 0.5 + 0.5 * np.cos(2 * np.pi * canvas.v / 0.045)
    image = composite(image, canvas.polygon(_SPINE, blur=1.5), 0.60 + 0.05 * discs)
    image = image + 0.14 * canvas.lines(_CLAVICLES, width=0.024, blur=1.5)

    heart = canvas.ellipse(case.heart_centre, case.heart_half, blur=2.5)
    image = composite(image, 0.92 * heart, 0.62)
    bubble = canvas.ellipse((case.lungs["left"].u(0.45), case.lungs["left"].dome + 0.06), (0.05, 0.03), blur=2)
    image = image - 0.12 * bubble * float(rng.random() < 0.6)  # the gastric bubble, under the left dome

    anatomy = AnatomyMasks(lungs, heart)
    masks = {}
    for finding, instances in case.findings.items():
        strength = 0.6 if case.mentions[finding] == "uncertain" else 1.0
        image, masks[finding] = FINDING_SPECS[finding].draw(canvas, case, anatomy, instances, image, strength, rng)

    image = canvas.blur(image, 0.6)
    image = image + rng.normal(0, 0.012, image.shape).astype(np.float32)
    gamma = rng.uniform(0.85, 1.15)
    image = np.clip(image, 0, 1) ** gamma * rng.uniform(0.9, 1.05) + rng.normal(0, 0.02)
    return np.clip(image, 0, 1), masks


def _ribs(case: Case, rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    """Nine ribs per side as polylines, curving down from the medial border across the lung."""
    ribs = []
    for lung in case.lungs.values():
        start, spacing = lung.apex - 0.01 + rng.normal(0, 0.005), 0.062 + rng.normal(0, 0.003)
        for k in range(9):
            v0 = start + k * spacing
            ribs.append([(lung.u(t), v0 - 0.035 * t + 0.11 * t * t) for t in np.linspace(-0.05, 1.05, 8)])
    return ribs


def _vessels(canvas: Canvas, case: Case, rng: np.random.Generator) -> np.ndarray:
    """Mask of vessels branching out of each hilum as random walks."""
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


def _mediastinum(case: Case) -> list[tuple[float, float]]:
    """The mediastinum as a polygon between the lungs' medial borders, from the top of the image to the heart."""
    right, left = case.lungs["right"].medial, case.lungs["left"].medial
    return [
        (right + 0.02, 0.0),
        (left - 0.02, 0.0),
        (left, 0.25),
        (left + 0.01, 0.42),
        (right - 0.01, 0.45),
        (right, 0.25),
    ]
