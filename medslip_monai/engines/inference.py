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
"""Predictions inside MONAI's evaluators: the one inferer (``network.predict``), what metrics and TensorBoard read
from its output, and the writer of an inference run's findings."""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.inferers import Inferer
from monai.utils import look_up_option
from torch import nn

from medslip_monai.cli import flag
from medslip_monai.data.datalist import SKIPPED
from medslip_monai.grounding import HEATMAPS, heat_maps, scale_by_batch_maximum
from medslip_monai.locations import places_text, top_places
from medslip_monai.networks.prediction import Prediction
from medslip_monai.reporting import OutputFolder, provenance, write_json
from medslip_monai.visualize import captioned_panels, display_grey, heat_overlay
from medslip_monai.vocab import DESCRIPTIVE_ENTITIES

__all__ = [
    "FindingsWriter",
    "GroundingPanel",
    "PredictionInferer",
    "grounding_box_pairs",
    "grounding_pairs",
    "stacked_pred_label",
    "zero_shot_scores",
]

logger = logging.getLogger(__name__)


def _predicting_module(network: nn.Module) -> nn.Module:
    """The network that has ``predict``: a DDP- or DataParallel-wrapped one is unwrapped (under DDP, attach
    :class:`~medslip_monai.engines.BroadcastBuffers` to the evaluator so every rank predicts with rank 0's
    batch-norm statistics, as DDP's own forward would)."""
    wrapped = isinstance(network, (nn.parallel.DistributedDataParallel, nn.DataParallel))
    return network.module if wrapped else network


class PredictionInferer(Inferer):
    """``inferer(image, network) -> Prediction``: the network's ``predict`` (``MeDSLIP.predict`` or
    ``MeDSLIPPredictor.predict``), the prediction path of training validation, evaluation and inference.

    Args:
        outputs: positions of the network's outputs to keep, in order (e.g. the validation findings among the 75
            entities); None keeps all.
        heatmap: ``"medslip"`` (maps as predicted) or ``"official"`` (each finding's maps divided by their largest
            value in the batch, as the released grounding script does: :func:`~medslip_monai.grounding
            .scale_by_batch_maximum`).
    """

    def __init__(self, outputs: Sequence[int] | None = None, heatmap: str = "medslip") -> None:
        super().__init__()
        self.outputs = None if outputs is None else list(outputs)
        self.heatmap = look_up_option(heatmap, HEATMAPS)

    def __call__(self, inputs: torch.Tensor, network: nn.Module, *args: Any, **kwargs: Any) -> Prediction | None:
        if inputs.numel() == 0:  # a batch whose items were all skipped as unreadable
            return None
        prediction = _predicting_module(network).predict(inputs)
        if self.outputs is not None:
            prediction = prediction.select(self.outputs)
        if self.heatmap == "official":
            prediction.maps = scale_by_batch_maximum(prediction.maps)
        return prediction


def zero_shot_scores(output: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluator output -> ``(probabilities [B, N], labels [B, N])`` for ROC-AUC metrics."""
    return output["pred"].probabilities, output["label"]["label"]


def grounding_pairs(output: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluator output -> ``(maps [B, N, h, w], masks [B, N, H, W])``: maps against the decoded ``labelmap``."""
    return output["pred"].maps, output["label"]["labelmap"]


def stacked_pred_label(output: Sequence[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """Decollated evaluator output (a list of per-image dicts) -> ``(pred [B, K], label [B, K])``."""
    return torch.stack([item["pred"] for item in output]), torch.stack([item["label"] for item in output])


def grounding_box_pairs(output: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluator output -> ``(maps [B, N, h, w], boxes [B, N, H, W])``: maps against the decoded ``boxmap``."""
    return output["pred"].maps, output["label"]["boxmap"]


class GroundingPanel:
    """Evaluator output -> one captioned picture ``[1, 3, H, W]`` of the batch's grounding, for MONAI's
    ``TensorBoardImageHandler`` (``output_transform``): for up to ``max_findings`` findings present in the batch,
    the first image showing each with that finding's heat map. ``[None]`` when none is present.

    Args:
        class_names: the findings, in the order of the evaluator's outputs.
        max_findings: panels per picture. Defaults to 3.
    """

    def __init__(self, class_names: Sequence[str], max_findings: int = 3) -> None:
        self.class_names = list(class_names)
        self.max_findings = max_findings

    def __call__(self, output: dict) -> Sequence[torch.Tensor | None]:
        images, prediction, labels = output["image"], output["pred"], output["label"]["label"]
        panels = []
        for k, name in enumerate(self.class_names):
            positives = torch.nonzero(labels[:, k] > 0.5).flatten()
            if len(panels) == self.max_findings or positives.numel() == 0:
                continue
            b = int(positives[0])
            heat = heat_maps(prediction.maps[b, k : k + 1].detach().cpu(), images.shape[-2:])[0]
            panels.append((heat_overlay(images[b], heat), [f"{name} {float(prediction.probabilities[b, k]):.2f}"]))
        if not panels:
            return [None]
        picture = np.asarray(captioned_panels(panels), dtype=np.float32) / 255
        return torch.from_numpy(picture).permute(2, 0, 1)[None]


class FindingsWriter:
    """Write the findings of an inference run: ``findings.json``, ``findings.csv`` and one overlay PNG per image.

    A finding is *judged present* when its probability reaches ``threshold``. For each present finding (except the
    descriptive entities such as "normal" or "clear", see ``skip``) the writer lists its ``top_locations`` most
    likely anatomical locations from the prediction's ``locations``, e.g. ``effusion: left costophrenic 0.83, right
    costophrenic 0.12`` (none, listed under ``no_location`` and written out as ``NO_LOCATION``, for a finding whose
    map is flat or not finite), and draws its heat map; the overlay shows the image and up to ``max_overlays`` present
    findings, most probable first, each captioned with its probability and locations.

    Probabilities are the network's, uncalibrated: ``threshold`` is a display choice, not an operating point chosen
    on any data. Pick operating points on a labelled validation split (``bundle/configs/evaluate.json``).

    The run claims ``output_dir`` before the first image (:class:`~medslip_monai.reporting.OutputFolder`: an
    unwritable folder, a folder another run is writing into, or one holding an earlier run's results without
    ``overwrite`` stop it there); the results are written into a hidden staging folder and moved into place when
    the run completes (replacing earlier results only then), so a failed run leaves no half results. ``findings.json`` records the model file and its
    sha256, the package version and the time, and the images skipped as unreadable with the reason; the run fails
    only when no image could be read.

    Args:
        output_dir: destination folder (created).
        class_names: names of the network outputs, in order (entities, then new findings); each name once (a new
            finding named like an entity would replace its result).
        report: the names to report, in output order; defaults to all. A model pre-trained on the synthetic world
            only learns its seven findings, so ``inference.json`` reports what the model was trained to evaluate.
        threshold: probability from which a finding is reported present. Defaults to 0.5.
        top_locations: locations listed per present finding. Defaults to 3.
        max_overlays: heat-map panels per overlay image. Defaults to 4.
        overlays: write overlay PNGs. Defaults to True.
        skip: names never located or drawn. Defaults to ``DESCRIPTIVE_ENTITIES``.
        path_key: batch key holding each image's file path. Defaults to ``"path"``.
        model_file: the weights file, recorded with its sha256.
        overwrite: replace an earlier run's results in ``output_dir``. Defaults to False.
    """

    RESULTS = ("findings.json", "findings.csv", "overlays")

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
        model_file: str | Path | None = None,
        overwrite: bool = False,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.class_names = list(class_names)
        repeated = sorted({name for name in self.class_names if self.class_names.count(name) > 1})
        if repeated:
            raise ValueError(
                f"output name(s) {repeated} appear twice (a new finding named like an entity, or a finding listed "
                "twice); give each output its own name"
            )
        unknown = sorted(set(report or ()) - set(self.class_names))
        if unknown:
            raise ValueError(f"cannot report {unknown}: the network outputs {self.class_names}")
        self.reported = [k for k, name in enumerate(self.class_names) if report is None or name in set(report)]
        self.threshold = float(threshold)
        self.top_locations = top_locations
        self.max_overlays = max_overlays
        self.overlays = flag(overlays, "overlays")
        self.skip = set(skip)
        self.path_key = path_key
        self.model_file = model_file
        self.folder = OutputFolder(self.output_dir, self.RESULTS, flag(overwrite, "overwrite"))
        self.rows: list[dict] = []
        self.skipped: list[dict] = []
        self._used_names: set[str] = set()

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._start)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._write)
        engine.add_event_handler(Events.EXCEPTION_RAISED, self._abandon)

    def _start(self, engine: Engine) -> None:
        self.rows, self.skipped, self._used_names = [], [], set()
        self.folder.claim()
        (self.folder.staging / "overlays").mkdir()

    def _abandon(self, engine: Engine, error: Exception) -> None:
        self.folder.release()  # only if this run holds the folder; the earlier results stay as they were
        raise error

    def _collect(self, engine: Engine) -> None:
        batch = engine.state.batch
        self.skipped += [{"image": item[SKIPPED], "reason": item["reason"]} for item in batch.get(SKIPPED, [])]
        if engine.state.output["pred"] is None:  # every image of the batch was skipped
            return
        prediction: Prediction = engine.state.output["pred"].detach_cpu()
        probabilities, locations = prediction.probabilities.numpy(), prediction.locations.numpy()
        if probabilities.shape[1] != len(self.class_names):
            raise ValueError(f"the network gives {probabilities.shape[1]} outputs for {len(self.class_names)} names")
        for b, path in enumerate(batch[self.path_key]):
            present = sorted(
                (k for k in self.reported if probabilities[b, k] >= self.threshold), key=lambda k: -probabilities[b, k]
            )
            located = [k for k in present if self.class_names[k] not in self.skip]
            row = {
                "image": str(path),
                "probabilities": {self.class_names[k]: round(float(probabilities[b, k]), 5) for k in self.reported},
                "present": [self.class_names[k] for k in present],
                "where": {self.class_names[k]: top_places(locations[b, k], self.top_locations) for k in located},
            }
            row["no_location"] = [name for name, places in row["where"].items() if not places]
            if self.overlays:
                image = engine.state.output["image"][b]
                row["overlay"] = self._draw(image, prediction.maps[b], probabilities[b], located, row, path)
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
        """One PNG: the image, then a captioned heat-map panel per located finding (at most ``max_overlays``);
        returns where it will be once the run completes."""
        image = image.detach().float().cpu()
        shown = located[: self.max_overlays]
        heat = heat_maps(maps[shown], image.shape[-2:]) if shown else []
        panels = [(display_grey(image), ["input", Path(path).name])]
        for k, picture_heat in zip(shown, heat):
            name = self.class_names[k]
            caption = [f"{name} {probabilities[k]:.2f}", places_text(row["where"][name])]
            panels.append((heat_overlay(image, picture_heat), caption))
        name = self._overlay_name(path)
        captioned_panels(panels).save(self.folder.staging / "overlays" / name)
        return str(self.output_dir / "overlays" / name)

    def _write(self, engine: Engine) -> None:
        try:
            if not self.rows:
                reasons = "; ".join(f"{item['image']}: {item['reason']}" for item in self.skipped[:3])
                raise ValueError(f"none of the {len(self.skipped)} input image(s) could be read ({reasons})")
            names = [self.class_names[k] for k in self.reported]
            record = {
                "threshold": self.threshold,
                "findings": names,
                "provenance": provenance(self.model_file),
                "images": self.rows,
                "skipped": self.skipped,
            }
            write_json(self.folder.staging / "findings.json", record)
            with open(self.folder.staging / "findings.csv", "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["image", *names, "present", "where"])
                for row in self.rows:
                    where = " | ".join(f"{name}: {places_text(places)}" for name, places in row["where"].items())
                    probabilities = (row["probabilities"][n] for n in names)
                    writer.writerow([row["image"], *probabilities, ";".join(row["present"]), where])
            if not self.overlays:
                (self.folder.staging / "overlays").rmdir()
            self.folder.commit()
        finally:
            self.folder.release()
        for item in self.skipped:
            logger.warning("skipped %s: %s", item["image"], item["reason"])
        logger.info(
            "findings of %d image(s) written to %s; %d skipped as unreadable",
            len(self.rows),
            self.output_dir,
            len(self.skipped),
        )
