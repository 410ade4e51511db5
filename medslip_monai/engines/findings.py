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
"""Inference on images: what (probabilities), where on the image (heat maps) and where in the anatomy (ICL)."""

from __future__ import annotations

import csv
import json
import logging
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.inferers import Inferer
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from medslip_monai.engines.handlers import display_grey, grounding_overlay
from medslip_monai.vocab import ANATOMIES, DESCRIPTIVE_ENTITIES, NON_LOCATIONS

__all__ = ["FindingsInferer", "FindingsWriter", "anatomy_label"]

logger = logging.getLogger(__name__)


def anatomy_label(name: str) -> str:
    """``left_costophrenic`` -> ``left costophrenic``; ``hilar_unspec`` -> ``hilar``."""
    return name.removesuffix("_unspec").replace("_", " ")


def _places_text(places: Sequence[Sequence]) -> str:
    """``[["left_costophrenic", 0.83], ...]`` -> ``"left costophrenic 0.83, ..."``."""
    return ", ".join(f"{anatomy_label(anatomy)} {share:.2f}" for anatomy, share in places)


class FindingsInferer(Inferer):
    """``inferer(image, network) -> network.predict(image)`` for a :class:`~medslip_monai.networks.MeDSLIPPredictor`:
    ``{"probabilities": [B, N], "maps": [B, N, h, w], "locations": [B, N, 51]}``."""

    def __call__(self, inputs: torch.Tensor, network: nn.Module, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        return network.predict(inputs)


class FindingsWriter:
    """Write the findings of an inference run: ``findings.json``, ``findings.csv`` and one overlay PNG per image.

    A finding is *judged present* when its probability reaches ``threshold``. For each present finding (except the
    descriptive entities such as "normal" or "clear", see ``skip``) the writer lists its ``top_locations`` most
    likely anatomical locations from the ICL scores, e.g. ``effusion: left costophrenic 0.83, right costophrenic
    0.12``, and draws its heat map; the overlay shows the image and up to ``max_overlays`` present findings, most
    probable first, each captioned with its probability and locations.

    Probabilities are the network's, uncalibrated: ``threshold`` is a display choice, not an operating point chosen
    on any data. Pick operating points on a labelled validation split (``bundle/configs/evaluate.json``).

    Args:
        output_dir: destination folder (created).
        class_names: names of the network outputs, in order (entities, then new findings).
        report: the names to report, in output order; defaults to all. A model pre-trained on the synthetic world
            only learns its seven findings, so ``inference.json`` reports what the model was trained to evaluate.
        threshold: probability from which a finding is reported present. Defaults to 0.5.
        top_locations: locations listed per present finding. Defaults to 3.
        max_overlays: heat-map panels per overlay image. Defaults to 4.
        overlays: write overlay PNGs. Defaults to True.
        skip: names never located or drawn. Defaults to ``DESCRIPTIVE_ENTITIES``.
        path_key: batch key holding each image's file path. Defaults to ``"path"``.
    """

    def __init__(
        self,
        output_dir: str | Path,
        class_names: Sequence[str],
        report: Sequence[str] | None = None,
        threshold: float = 0.5,
        top_locations: int = 3,
        max_overlays: int = 4,
        overlays: bool = True,
        skip: Sequence[str] = DESCRIPTIVE_ENTITIES,
        path_key: str = "path",
    ) -> None:
        self.output_dir = Path(output_dir)
        self.class_names = list(class_names)
        unknown = sorted(set(report or ()) - set(self.class_names))
        if unknown:
            raise ValueError(f"cannot report {unknown}: the network outputs {self.class_names}")
        self.reported = [k for k, name in enumerate(self.class_names) if report is None or name in set(report)]
        self.threshold = float(threshold)
        self.top_locations = top_locations
        self.max_overlays = max_overlays
        self.overlays = overlays
        self.skip = set(skip)
        self.path_key = path_key
        self._places = [k for k, name in enumerate(ANATOMIES) if name not in NON_LOCATIONS]
        self.rows: list[dict] = []
        self._used_names: set[str] = set()

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._write)

    def _reset(self, engine: Engine) -> None:
        self.rows, self._used_names = [], set()
        if self.overlays:
            (self.output_dir / "overlays").mkdir(parents=True, exist_ok=True)

    def _where(self, locations: np.ndarray) -> list[list]:
        order = sorted(self._places, key=lambda k: -locations[k])[: self.top_locations]
        return [[ANATOMIES[k], round(float(locations[k]), 4)] for k in order]

    def _collect(self, engine: Engine) -> None:
        output, paths = engine.state.output, engine.state.batch[self.path_key]
        pred = {key: value.detach().float().cpu() for key, value in output["pred"].items()}
        probabilities, locations = pred["probabilities"].numpy(), pred["locations"].numpy()
        if probabilities.shape[1] != len(self.class_names):
            raise ValueError(f"the network gives {probabilities.shape[1]} outputs for {len(self.class_names)} names")
        for b, path in enumerate(paths):
            present = sorted(
                (k for k in self.reported if probabilities[b, k] >= self.threshold), key=lambda k: -probabilities[b, k]
            )
            located = [k for k in present if self.class_names[k] not in self.skip]
            row = {
                "image": str(path),
                "probabilities": {self.class_names[k]: round(float(probabilities[b, k]), 5) for k in self.reported},
                "present": [self.class_names[k] for k in present],
                "where": {self.class_names[k]: self._where(locations[b, k]) for k in located},
            }
            if self.overlays:
                row["overlay"] = self._draw(output["image"][b], pred["maps"][b], probabilities[b], located, row, path)
            self.rows.append(row)

    def _overlay_name(self, path: str) -> str:
        stem = Path(path).name.split(".")[0] or "image"
        name, suffix = stem, 1
        while name in self._used_names:
            suffix += 1
            name = f"{stem}_{suffix}"
        self._used_names.add(name)
        return f"{name}.png"

    def _draw(
        self, image: torch.Tensor, maps: torch.Tensor, probabilities: np.ndarray, located: list, row: dict, path: str
    ) -> str:
        """One PNG: the image, then a captioned heat-map panel per located finding (at most ``max_overlays``)."""
        image = image.detach().float().cpu()
        size = max(256, int(image.shape[-1]))
        panels = [(display_grey(image).expand(3, -1, -1), ["input", Path(path).name])]
        for k in located[: self.max_overlays]:
            name = self.class_names[k]
            lines = [f"{name} {probabilities[k]:.2f}", *textwrap.wrap(_places_text(row["where"][name]), 42)[:2]]
            panels.append((grounding_overlay(image, maps[k]), lines))
        font = ImageFont.load_default()
        caption = 4 + 15 * 3
        canvas = Image.new("RGB", (size * len(panels), size + caption), "white")
        draw = ImageDraw.Draw(canvas)
        for i, (picture, lines) in enumerate(panels):
            array = (picture.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            canvas.paste(Image.fromarray(array).resize((size, size), Image.Resampling.BILINEAR), (i * size, 0))
            for j, line in enumerate(lines):
                draw.text((i * size + 4, size + 3 + 15 * j), line[:48], fill="black", font=font)
        target = self.output_dir / "overlays" / self._overlay_name(path)
        canvas.save(target)
        return str(target)

    def _write(self, engine: Engine) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        names = [self.class_names[k] for k in self.reported]
        record = {"threshold": self.threshold, "findings": names, "images": self.rows}
        (self.output_dir / "findings.json").write_text(json.dumps(record, indent=1))
        with open(self.output_dir / "findings.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image", *names, "present", "where"])
            for row in self.rows:
                where = " | ".join(f"{name}: {_places_text(places)}" for name, places in row["where"].items())
                writer.writerow(
                    [row["image"], *(row["probabilities"][n] for n in names), ";".join(row["present"]), where]
                )
        logger.info("findings of %d images written to %s", len(self.rows), self.output_dir)
