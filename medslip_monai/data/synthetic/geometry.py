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
"""The geometry of one synthetic chest: anatomical landmarks, the lungs and heart of a case, and a canvas.

Coordinates are normalised: ``u`` runs from the image's left (0) to its right (1) and ``v`` from the top (0) to the
bottom (1). Radiological convention: the patient's right lung lies on the image's left (smaller ``u``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = [
    "MIDLINE",
    "APEX",
    "RIGHT_DOME",
    "LEFT_DOME_BELOW_RIGHT",
    "ANGLE_BELOW_DOME",
    "LATERAL_WALL_FROM_MIDLINE",
    "MEDIAL_BORDER_FROM_MIDLINE",
    "CARDIOTHORACIC_RATIO",
    "HEART_HALF_HEIGHT",
    "Lobe",
    "LOBES",
    "ZONES",
    "Lung",
    "Case",
    "AnatomyMasks",
    "Canvas",
    "composite",
    "sample_anatomy",
]

#: ``u`` of the body's midline (mean; each case shifts it a little).
MIDLINE = 0.5
#: ``v`` of the lung apices (mean).
APEX = 0.12
#: ``v`` of the right hemidiaphragm's dome (mean).
RIGHT_DOME = 0.64
#: How much lower the left dome sits than the right (``v``, mean).
LEFT_DOME_BELOW_RIGHT = 0.025
#: How far below its dome a lung's costophrenic angle lies (``v``, mean).
ANGLE_BELOW_DOME = 0.10
#: Distance of each lung's lateral wall from the midline (``u``, mean).
LATERAL_WALL_FROM_MIDLINE = 0.37
#: Distance of each lung's medial border from the midline (``u``, mean).
MEDIAL_BORDER_FROM_MIDLINE = 0.065
#: Range of the normal heart's width over the thorax's (lateral wall to lateral wall).
CARDIOTHORACIC_RATIO = (0.38, 0.47)
#: Range of the normal heart's half height (``v``).
HEART_HALF_HEIGHT = (0.10, 0.12)


class Lobe(NamedTuple):
    """A lung lobe: the lung it belongs to, its name in a report and the ``v`` of its centre."""

    side: str
    words: str
    centre_v: float


#: The lobes by anatomy entity.
LOBES = {
    "upper_right_lobe": Lobe("right", "right upper lobe", 0.30),
    "middle_right_lobe": Lobe("right", "right middle lobe", 0.50),
    "lower_right_lobe": Lobe("right", "right lower lobe", 0.64),
    "upper_left_lobe": Lobe("left", "left upper lobe", 0.32),
    "lower_left_lobe": Lobe("left", "left lower lobe", 0.64),
}
#: The ``v`` of the centre of each lung zone.
ZONES = {"upper": 0.28, "mid": 0.45, "lower": 0.60}


@dataclass
class Lung:
    """One lung field, by its borders.

    Attributes:
        side: ``"right"`` (on the image's left) or ``"left"`` (on the image's right).
        lateral: ``u`` of the lateral wall.
        medial: ``u`` of the medial border.
        apex: ``v`` of the apex.
        dome: ``v`` of the diaphragm's dome.
        angle: ``v`` of the costophrenic angle.
    """

    side: str
    lateral: float
    medial: float
    apex: float
    dome: float
    angle: float

    def u(self, t: float) -> float:
        """``u`` at fraction ``t`` from the medial (0) to the lateral (1) border."""
        return self.medial + t * (self.lateral - self.medial)

    def outline(self, inset: float = 0.0) -> list[tuple[float, float]]:
        """Polygon of the lung field in (u, v), optionally shrunk toward its centre by ``inset``."""
        points = [
            # the apical cap, from the medial border over the apex to the lateral wall
            (self.u(0.0), self.apex + 0.10),
            (self.u(0.22), self.apex + 0.012),
            (self.u(0.45), self.apex),
            (self.u(0.70), self.apex + 0.03),
            (self.u(0.93), self.apex + 0.13),
            # the lateral wall down to the costophrenic angle
            (self.u(1.0), self.apex + 0.32),
            (self.u(1.0), self.angle - 0.08),
            (self.u(0.985), self.angle),
            # the diaphragm back to the medial border
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
class Case:
    """Everything drawn for one image, in normalised (u, v) coordinates.

    Attributes:
        lungs: the lungs by side (``"right"``, ``"left"``).
        midline: ``u`` of the body's midline.
        heart_ratio: the heart's width over the thorax's (the cardiothoracic ratio).
        heart_half_height: half the heart's height (``v``).
        findings: the present findings, each with its instances (dicts of parameters: side, size, ...).
        mentions: how the report mentions each finding: positive, uncertain, negated or unmentioned.
    """

    lungs: dict[str, Lung]
    midline: float
    heart_ratio: float
    heart_half_height: float
    findings: dict[str, list[dict]] = field(default_factory=dict)
    mentions: dict[str, str] = field(default_factory=dict)

    @property
    def thorax(self) -> float:
        """Width of the thorax, lateral wall to lateral wall (``u``)."""
        return self.lungs["left"].lateral - self.lungs["right"].lateral

    @property
    def heart_half(self) -> tuple[float, float]:
        """Half width and half height of the heart."""
        return self.heart_ratio * self.thorax / 2, self.heart_half_height

    @property
    def heart_centre(self) -> tuple[float, float]:
        """Centre of the heart: shifted to the patient's left (image right), its lower edge just below the right dome."""
        return self.midline + 0.3 * self.heart_half[0], self.lungs["right"].dome + 0.01 - self.heart_half[1] * 0.75


@dataclass(frozen=True)
class AnatomyMasks:
    """The normal anatomy as drawn, soft masks in [0, 1] of shape ``[size, size]``.

    Attributes:
        lungs: each lung field by side.
        heart: the cardiac silhouette.
    """

    lungs: dict[str, np.ndarray]
    heart: np.ndarray

    @property
    def lung_field(self) -> np.ndarray:
        """Both lung fields."""
        return np.maximum(self.lungs["left"], self.lungs["right"])


class Canvas:
    """Draws shapes given in (u, v) into float masks of ``size`` x ``size`` pixels.

    Blur radii are in pixels of a 256-pixel image and scale with ``size``.
    """

    def __init__(self, size: int) -> None:
        self.size = size

    @property
    def u(self) -> np.ndarray:
        """``u`` of each column, shape ``[1, size]``."""
        return np.linspace(0, 1, self.size, dtype=np.float32)[None, :]

    @property
    def v(self) -> np.ndarray:
        """``v`` of each row, shape ``[size, 1]``."""
        return np.linspace(0, 1, self.size, dtype=np.float32)[:, None]

    def px(self, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        """Points in pixels."""
        return [(u * self.size, v * self.size) for u, v in points]

    def mask(self, draw_fn, blur: float = 0.0) -> np.ndarray:
        """A mask in [0, 1] of what ``draw_fn`` draws in white on a PIL ``ImageDraw``, then blurred."""
        image = Image.new("L", (self.size, self.size), 0)
        draw_fn(ImageDraw.Draw(image))
        if blur > 0:
            image = image.filter(ImageFilter.GaussianBlur(blur * self.size / 256))
        return np.asarray(image, dtype=np.float32) / 255.0

    def polygon(self, points: list[tuple[float, float]], blur: float = 0.0) -> np.ndarray:
        """A filled polygon."""
        return self.mask(lambda d: d.polygon(self.px(points), fill=255), blur)

    def ellipse(self, centre: tuple[float, float], half: tuple[float, float], blur: float = 0.0) -> np.ndarray:
        """A filled ellipse of half axes ``half``."""
        (cu, cv), (hu, hv) = centre, half
        return self.mask(lambda d: d.ellipse(self.px([(cu - hu, cv - hv), (cu + hu, cv + hv)]), fill=255), blur)

    def lines(self, polylines: list[list[tuple[float, float]]], width: float, blur: float = 0.0) -> np.ndarray:
        """Polylines ``width`` wide (``u``)."""
        pixels = max(1, int(round(width * self.size)))

        def draw(d):
            for line in polylines:
                d.line(self.px(line), fill=255, width=pixels, joint="curve")

        return self.mask(draw, blur)

    def blur(self, values: np.ndarray, blur: float) -> np.ndarray:
        """``values`` in [0, 1] quantised to 8 bits and blurred."""
        image = Image.fromarray(np.clip(values * 255, 0, 255).astype(np.uint8))
        return np.asarray(image.filter(ImageFilter.GaussianBlur(blur * self.size / 256)), dtype=np.float32) / 255

    def smooth_noise(self, rng: np.random.Generator, cells: int) -> np.ndarray:
        """Zero-mean smooth noise in [-1, 1] from a ``cells`` x ``cells`` random grid."""
        grid = Image.fromarray(rng.uniform(0, 255, (cells, cells)).astype(np.uint8))
        noise = np.asarray(grid.resize((self.size, self.size), Image.BICUBIC), dtype=np.float32)
        return (noise - 127.5) / 127.5


def composite(image: np.ndarray, alpha: np.ndarray, value) -> np.ndarray:
    """``image`` covered by ``value`` with opacity ``alpha``."""
    return image * (1 - alpha) + alpha * value


def sample_anatomy(rng: np.random.Generator) -> Case:
    """A normal chest: lungs and heart varied around the landmarks, no findings yet."""
    midline = MIDLINE + rng.normal(0, 0.012)
    apex = APEX + rng.normal(0, 0.012)
    right_dome = RIGHT_DOME + rng.normal(0, 0.015)
    left_dome = right_dome + LEFT_DOME_BELOW_RIGHT + rng.normal(0, 0.01)
    lungs = {}
    for side, sign, dome in (("right", -1, right_dome), ("left", 1, left_dome)):
        lungs[side] = Lung(
            side=side,
            lateral=midline + sign * (LATERAL_WALL_FROM_MIDLINE + rng.normal(0, 0.012)),
            medial=midline + sign * (MEDIAL_BORDER_FROM_MIDLINE + rng.normal(0, 0.006)),
            apex=apex + rng.normal(0, 0.006),
            dome=dome,
            angle=dome + ANGLE_BELOW_DOME + rng.normal(0, 0.01),
        )
    heart_ratio = rng.uniform(*CARDIOTHORACIC_RATIO)
    heart_half_height = rng.uniform(*HEART_HALF_HEIGHT)
    return Case(lungs, midline, heart_ratio, heart_half_height)
