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
"""The findings of the synthetic world, one spec each: how it is sampled, drawn, described, negated and summarised.

Each finding is a subclass of :class:`FindingSpec` and ``FINDING_SPECS`` holds one of each, in the world's order.

The world is the same byte for byte for a seed, so the order in which a spec draws random numbers is part of it:
every finding draws a side before its instances, whether it uses it or not, and a sentence's options are all worded
(their random words drawn) before one is picked. Changing either changes the world (and ``WORLD_VERSION``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from medslip_monai.data.synthetic.geometry import LOBES, ZONES, AnatomyMasks, Canvas, Case, composite

__all__ = [
    "Statement",
    "pick",
    "FindingSpec",
    "Effusion",
    "Pneumothorax",
    "Consolidation",
    "Nodule",
    "Cardiomegaly",
    "Edema",
    "Atelectasis",
    "FINDING_SPECS",
    "FINDINGS",
]

#: A report sentence and the (anatomy, pathology, 0 or 1) triplets it states.
Statement = tuple[str, list[list]]
#: Millimetres across the image, for sizes in reports.
_IMAGE_WIDTH_MM = 350


def pick(rng: np.random.Generator, options):
    """One of ``options``, uniformly."""
    return options[int(rng.integers(len(options)))]


def _size_word(rng: np.random.Generator) -> str:
    return pick(rng, ["small", "moderate", "small to moderate", "large"])


def _is_bilateral(instances: list[dict]) -> bool:
    return len({i["side"] for i in instances}) == 2


class FindingSpec(ABC):
    """What one finding is in the synthetic world.

    Instances are dicts of parameters (``side``, sizes, ...) in normalised (u, v) coordinates; a case holds the
    instances of each finding it has.

    Attributes:
        name: the finding, also the name of its MeDSLIP pathology entity.
        prevalence: the probability that a case has it.
        negations: the sentences that deny it in a report; one is picked when the report negates it.
        report_rank: where its sentence comes in a report (heart, then lungs, then pleura); lower first.
        rules_out_clear_lungs: a positive or uncertain mention rules out "The lungs are clear.".
        rules_out_normal_heart: a positive or uncertain mention rules out "Normal cardiomediastinal silhouette.".
    """

    name: ClassVar[str]
    prevalence: ClassVar[float]
    negations: ClassVar[tuple[Statement, ...]]
    report_rank: ClassVar[int]
    rules_out_clear_lungs: ClassVar[bool] = False
    rules_out_normal_heart: ClassVar[bool] = False

    def sample(self, rng: np.random.Generator) -> list[dict]:
        """The instances of the finding in a case that has it: a side is drawn first, then :meth:`instances`."""
        return self.instances(str(rng.choice(["left", "right"])), rng)

    @abstractmethod
    def instances(self, side: str, rng: np.random.Generator) -> list[dict]:
        """The instances of the finding, given the side drawn for it (which it may ignore)."""

    def remodel(self, case: Case, rng: np.random.Generator) -> None:
        """Changes the finding makes to the case's anatomy once every finding is sampled; none by default."""
        return

    @abstractmethod
    def draw(
        self,
        canvas: Canvas,
        case: Case,
        anatomy: AnatomyMasks,
        instances: list[dict],
        image: np.ndarray,
        strength: float,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw the instances on ``image``.

        Args:
            canvas: the canvas of the image.
            case: the case being drawn.
            anatomy: the normal anatomy as drawn.
            instances: the finding's instances in the case.
            image: the image so far, ``[size, size]`` float32, brighter is denser.
            strength: opacity factor, below 1 for findings the report is uncertain of.
            rng: the case's random stream.

        Returns:
            The image with the finding and the finding's mask (``[size, size]`` float32, 1 where it lies).
        """

    @abstractmethod
    def sentence(self, instances: list[dict], mention: str, rng: np.random.Generator) -> Statement:
        """A report sentence for the present finding, ``mention`` ``"positive"`` or ``"uncertain"``."""

    @abstractmethod
    def impression(self, instances: list[dict]) -> Statement:
        """The impression line of the present finding, stated positively."""


class Effusion(FindingSpec):
    """Pleural fluid at one or both lung bases, its meniscus climbing the lateral wall."""

    name = "effusion"
    prevalence = 0.25
    report_rank = 5
    negations = (
        ("No pleural effusion.", [["pleural_unspec", "effusion", 0]]),
        ("There is no pleural effusion.", [["pleural_unspec", "effusion", 0]]),
    )

    def instances(self, side, rng):
        sides = ["left", "right"] if rng.random() < 0.25 else [side]
        return [{"side": s, "height": rng.uniform(0.07, 0.17)} for s in sides]

    def draw(self, canvas, case, anatomy, instances, image, strength, rng):
        mask = np.zeros_like(image)
        for inst in instances:
            lung = case.lungs[inst["side"]]
            top = lung.angle - inst["height"] - 0.05
            surface = [(lung.u(t), top + 0.05 * (1 - t) ** 0.5 * 1.2 + 0.02 * t) for t in np.linspace(0, 1, 9)]
            surface[-1] = (lung.u(1.02), top - 0.02)  # the meniscus climbs the lateral wall
            region = surface + [(lung.u(1.02), lung.angle + 0.015), (lung.u(0.0), lung.angle + 0.015)]
            fluid = canvas.polygon(region, blur=2.5) * np.clip(anatomy.lungs[inst["side"]] * 1.6, 0, 1)
            image = composite(image, strength * 0.95 * fluid, 0.55)
            mask = np.maximum(mask, fluid > 0.5)
        return image, mask.astype(np.float32)

    def sentence(self, instances, mention, rng):
        side = instances[0]["side"]
        if mention == "uncertain":
            return pick(
                rng,
                [
                    (f"Possible small {side} pleural effusion.", []),
                    (f"A trace {side} effusion cannot be excluded.", []),
                ],
            )
        if _is_bilateral(instances):
            return (
                f"Bilateral {_size_word(rng)} pleural effusions.",
                [["left_pleural", "effusion", 1], ["right_pleural", "effusion", 1]],
            )
        return pick(
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

    def impression(self, instances):
        if _is_bilateral(instances):
            return "Bilateral pleural effusions.", [["left_pleural", "effusion", 1], ["right_pleural", "effusion", 1]]
        side = instances[0]["side"]
        return f"{side.capitalize()} pleural effusion.", [[f"{side}_pleural", "effusion", 1]]


class Pneumothorax(FindingSpec):
    """Air between the lung and the chest wall at an apex: a dark rim outside a thin bright pleural line."""

    name = "pneumothorax"
    prevalence = 0.2
    report_rank = 6
    rules_out_clear_lungs = True
    negations = (
        ("No pneumothorax.", [["unspecified", "pneumothorax", 0]]),
        ("There is no evidence of pneumothorax.", [["unspecified", "pneumothorax", 0]]),
    )

    def instances(self, side, rng):
        return [{"side": side, "depth": rng.uniform(0.035, 0.07), "extent": rng.uniform(0.2, 0.34)}]

    def draw(self, canvas, case, anatomy, instances, image, strength, rng):
        mask = np.zeros_like(image)
        for inst in instances:
            lung = case.lungs[inst["side"]]
            collapsed = canvas.polygon(lung.outline(inset=inst["depth"]), blur=0.8)
            zone = canvas.v < lung.apex + inst["extent"]
            air = anatomy.lungs[inst["side"]] * (1 - collapsed) * zone
            image = composite(image, strength * air, 0.05)
            edge = [p for p in lung.outline(inset=inst["depth"]) if p[1] < lung.apex + inst["extent"]]
            pleura = canvas.lines([edge], width=0.005, blur=0.6) * zone
            image = image + strength * 0.3 * pleura
            mask = np.maximum(mask, air > 0.5)
        return image, mask.astype(np.float32)

    def sentence(self, instances, mention, rng):
        side = instances[0]["side"]
        if mention == "uncertain":
            return pick(
                rng,
                [(f"Possible tiny {side} apical pneumothorax.", []), (f"Questionable {side} apical pneumothorax.", [])],
            )
        triplets = [[f"{side}_apical_lung", "pneumothorax", 1]]
        return pick(
            rng,
            [
                (f"There is a {_size_word(rng)} {side} apical pneumothorax.", triplets),
                (f"{_size_word(rng).capitalize()} pneumothorax at the {side} apex.", triplets),
                (f"A {side} apical pneumothorax is noted, measuring approximately {rng.integers(1, 4)} cm.", triplets),
            ],
        )

    def impression(self, instances):
        side = instances[0]["side"]
        return f"{side.capitalize()} apical pneumothorax.", [[f"{side}_apical_lung", "pneumothorax", 1]]


class Consolidation(FindingSpec):
    """Dense airspace opacity filling part of one lobe, crossed by dark air bronchograms."""

    name = "consolidation"
    prevalence = 0.25
    report_rank = 1
    rules_out_clear_lungs = True
    negations = (
        ("No focal consolidation.", [["unspecified", "consolidation", 0]]),
        ("There is no consolidation.", [["unspecified", "consolidation", 0]]),
    )

    def instances(self, side, rng):
        return [{"lobe": str(rng.choice(list(LOBES)))}]

    def draw(self, canvas, case, anatomy, instances, image, strength, rng):
        mask = np.zeros_like(image)
        for inst in instances:
            lobe = LOBES[inst["lobe"]]
            lung = case.lungs[lobe.side]
            centre = (lung.u(0.55), lobe.centre_v + rng.normal(0, 0.015))
            blob = np.zeros_like(image)
            for _ in range(rng.integers(4, 8)):
                offset = (centre[0] + rng.normal(0, 0.035), centre[1] + rng.normal(0, 0.035))
                blob = np.maximum(blob, canvas.ellipse(offset, (rng.uniform(0.04, 0.07), rng.uniform(0.035, 0.06))))
            blob = canvas.blur(blob, 3.0) * anatomy.lungs[lobe.side]
            bronchi = []
            for _ in range(3):
                angle = rng.uniform(0, 2 * np.pi)
                bronchi.append([centre, (centre[0] + 0.05 * math.cos(angle), centre[1] + 0.05 * math.sin(angle))])
            image = composite(image, strength * 0.9 * blob, 0.52)
            image = image - strength * 0.12 * canvas.lines(bronchi, width=0.006, blur=0.7) * (blob > 0.6)
            mask = np.maximum(mask, blob > 0.5)
        return image, mask.astype(np.float32)

    def sentence(self, instances, mention, rng):
        lobe = instances[0]["lobe"]
        words = LOBES[lobe].words
        if mention == "uncertain":
            return f"Patchy opacity in the {words}, possibly early consolidation.", [[lobe, "opacity", 1]]
        return pick(
            rng,
            [
                (f"There is consolidation in the {words}.", [[lobe, "consolidation", 1]]),
                (f"{words.capitalize()} airspace consolidation.", [[lobe, "consolidation", 1]]),
                (
                    f"Dense opacification of the {words} compatible with consolidation.",
                    [[lobe, "opacity", 1], [lobe, "consolidation", 1]],
                ),
            ],
        )

    def impression(self, instances):
        lobe = instances[0]["lobe"]
        return f"{LOBES[lobe].words.capitalize()} consolidation.", [[lobe, "consolidation", 1]]


class Nodule(FindingSpec):
    """One or two round opacities, each in a lung zone (upper, mid or lower) of either lung."""

    name = "nodule"
    prevalence = 0.2
    report_rank = 2
    rules_out_clear_lungs = True
    negations = (
        ("No pulmonary nodules.", [["pulmonary", "nodule", 0]]),
        ("No suspicious pulmonary nodule or mass.", [["pulmonary", "nodule", 0], ["unspecified", "mass", 0]]),
    )

    def instances(self, side, rng):
        count = 2 if rng.random() < 0.15 else 1
        places = rng.choice(len(ZONES) * 2, size=count, replace=False)  # distinct (lung, zone) pairs
        sides_zones = [(("right", "left")[p // len(ZONES)], list(ZONES)[p % len(ZONES)]) for p in places]
        return [{"side": s, "zone": z, "radius": rng.uniform(0.025, 0.042)} for s, z in sides_zones]

    def draw(self, canvas, case, anatomy, instances, image, strength, rng):
        mask = np.zeros_like(image)
        for inst in instances:
            lung = case.lungs[inst["side"]]
            centre = (lung.u(rng.uniform(0.4, 0.75)), ZONES[inst["zone"]] + rng.normal(0, 0.02))
            disc = canvas.ellipse(centre, (inst["radius"], inst["radius"]), blur=0.8)
            image = composite(image, strength * 0.9 * disc, 0.58)
            mask = np.maximum(mask, disc > 0.5)
        return image, mask.astype(np.float32)

    def sentence(self, instances, mention, rng):
        if mention == "uncertain":
            zone = f"{instances[0]['side']} {instances[0]['zone']} lung"
            return f"Possible small nodule in the {zone}, which may represent a nipple shadow.", []
        sentences, triplets = [], []
        for inst in instances:
            zone, anatomy = f"{inst['side']} {inst['zone']} lung", f"{inst['side']}_{inst['zone']}_lung"
            mm = int(round(inst["radius"] * 2 * _IMAGE_WIDTH_MM))
            sentence = pick(
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

    def impression(self, instances):
        first = instances[0]
        return (
            f"{first['side'].capitalize()} {first['zone']} lung nodule.",
            [[f"{first['side']}_{first['zone']}_lung", "nodule", 1]],
        )


class Cardiomegaly(FindingSpec):
    """An enlarged heart: cardiothoracic ratio 0.58 to 0.68, or borderline (0.53 to 0.56) when the report is uncertain.

    The heart is drawn with the normal anatomy; the finding only enlarges it (:meth:`remodel`) and masks it.
    """

    name = "cardiomegaly"
    prevalence = 0.25
    report_rank = 0
    rules_out_normal_heart = True
    negations = (
        ("Heart size is normal.", [["heart_size", "cardiomegaly", 0], ["heart_size", "normal", 1]]),
        ("No cardiomegaly.", [["unspecified", "cardiomegaly", 0]]),
    )

    def instances(self, side, rng):
        return [{}]

    def remodel(self, case, rng):
        borderline = case.mentions[self.name] == "uncertain"
        case.heart_ratio = rng.uniform(0.53, 0.56) if borderline else rng.uniform(0.58, 0.68)
        case.heart_half_height += rng.uniform(0.01, 0.025)

    def draw(self, canvas, case, anatomy, instances, image, strength, rng):
        return image, (anatomy.heart > 0.5).astype(np.float32)

    def sentence(self, instances, mention, rng):
        if mention == "uncertain":
            return "The heart size is borderline enlarged.", [["heart_size", "borderline", 1]]
        return pick(
            rng,
            [
                ("The heart is enlarged.", [["heart_size", "cardiomegaly", 1]]),
                (f"There is {pick(rng, ['mild', 'moderate'])} cardiomegaly.", [["unspecified", "cardiomegaly", 1]]),
                ("Enlarged cardiac silhouette.", [["heart_size", "cardiomegaly", 1]]),
            ],
        )

    def impression(self, instances):
        return "Cardiomegaly.", [["unspecified", "cardiomegaly", 1]]


class Edema(FindingSpec):
    """Perihilar haze in both lungs with Kerley B lines at the lateral bases, its density set by a severity."""

    name = "edema"
    prevalence = 0.2
    report_rank = 3
    rules_out_clear_lungs = True
    negations = (
        ("No pulmonary edema.", [["pulmonary", "edema", 0]]),
        ("No evidence of edema.", [["unspecified", "edema", 0]]),
    )

    def instances(self, side, rng):
        return [{"severity": rng.uniform(0.7, 1.0)}]

    def draw(self, canvas, case, anatomy, instances, image, strength, rng):
        severity = instances[0]["severity"] * strength
        u, v = canvas.u, canvas.v
        haze = np.zeros_like(image)
        for lung in case.lungs.values():
            hu, hv = lung.u(0.2), (lung.apex + lung.dome) / 2 + 0.03
            haze = np.maximum(haze, np.exp(-(((u - hu) / 0.13) ** 2 + ((v - hv) / 0.16) ** 2)))
        lung_field = anatomy.lung_field
        haze = haze * lung_field * (0.85 + 0.15 * canvas.smooth_noise(rng, 30))
        image = image + severity * 0.26 * haze
        kerley = []
        for lung in case.lungs.values():
            for _ in range(4):
                v0 = lung.angle - rng.uniform(0.05, 0.16)
                kerley.append([(lung.u(1.0), v0), (lung.u(0.86), v0 + rng.normal(0, 0.004))])
        image = image + severity * 0.12 * canvas.lines(kerley, width=0.004, blur=0.5) * lung_field
        return image, (haze > 0.4).astype(np.float32)

    def sentence(self, instances, mention, rng):
        if mention == "uncertain":
            return "Hazy perihilar opacities may reflect mild edema.", [["hilar_unspec", "opacity", 1]]
        return pick(
            rng,
            [
                (f"There is {pick(rng, ['mild', 'moderate'])} pulmonary edema.", [["pulmonary", "edema", 1]]),
                (
                    "Bilateral perihilar opacities consistent with interstitial edema.",
                    [["left_hilar", "opacity", 1], ["right_hilar", "opacity", 1], ["interstitium", "edema", 1]],
                ),
                ("Findings consistent with moderate pulmonary edema.", [["pulmonary", "edema", 1]]),
            ],
        )

    def impression(self, instances):
        return "Pulmonary edema.", [["pulmonary", "edema", 1]]


class Atelectasis(FindingSpec):
    """A plate-like band of collapsed lung above the diaphragm, at one base or both."""

    name = "atelectasis"
    prevalence = 0.2
    report_rank = 4
    rules_out_clear_lungs = True
    negations = (("No atelectasis.", [["unspecified", "atelectasis", 0]]),)

    def instances(self, side, rng):
        sides = ["left", "right"] if rng.random() < 0.2 else [side]
        return [{"side": s} for s in sides]

    def draw(self, canvas, case, anatomy, instances, image, strength, rng):
        mask = np.zeros_like(image)
        for inst in instances:
            lung = case.lungs[inst["side"]]
            centre = (lung.u(rng.uniform(0.45, 0.7)), lung.dome - rng.uniform(0.05, 0.11))
            angle, half = rng.uniform(-0.35, 0.35), rng.uniform(0.07, 0.12)
            line = [
                (centre[0] - half * math.cos(angle), centre[1] - half * math.sin(angle)),
                (centre[0] + half * math.cos(angle), centre[1] + half * math.sin(angle)),
            ]
            band = canvas.lines([line], width=rng.uniform(0.02, 0.03), blur=1.0) * anatomy.lungs[inst["side"]]
            image = composite(image, strength * 0.9 * band, 0.5)
            mask = np.maximum(mask, band > 0.4)
        return image, mask.astype(np.float32)

    def sentence(self, instances, mention, rng):
        side = instances[0]["side"]
        if mention == "uncertain":
            return f"Minimal {side} basilar opacity, possibly atelectasis.", [[f"{side}_lower_lung", "opacity", 1]]
        if _is_bilateral(instances):
            return "Bibasilar atelectasis.", [["lung_bases", "atelectasis", 1]]
        return pick(
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

    def impression(self, instances):
        if _is_bilateral(instances):
            return "Bibasilar atelectasis.", [["lung_bases", "atelectasis", 1]]
        side = instances[0]["side"]
        return f"{side.capitalize()} basilar atelectasis.", [[f"{side}_lower_lung", "atelectasis", 1]]


#: The spec of each finding by name, in the world's order.
FINDING_SPECS: dict[str, FindingSpec] = {
    spec.name: spec
    for spec in (Effusion(), Pneumothorax(), Consolidation(), Nodule(), Cardiomegaly(), Edema(), Atelectasis())
}
#: The synthetic findings; each is also the name of its MeDSLIP pathology entity. Bit ``k`` of a label map (masks)
#: or box map (filled boxes) is finding ``k``.
FINDINGS = tuple(FINDING_SPECS)
