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
"""Zero-shot evaluation (``bundle/configs/evaluate.json``): one evaluator run over the validation and test splits of
a classification and a grounding datalist, scored by :mod:`medslip_monai.metrics` with choices made on validation,
written by :mod:`medslip_monai.reporting` and drawn by :mod:`medslip_monai.visualize`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.data import DataLoader, Dataset

from medslip_monai.cli import flag
from medslip_monai.data.datalist import SKIPPED, build_dataset, collate_loaded, load_datalist
from medslip_monai.grounding import heat_maps
from medslip_monai.metrics import classification_metrics, grounding_metrics
from medslip_monai.reporting import OutputFolder, format_cell, markdown_table, provenance, write_report
from medslip_monai.visualize import OUTLINE_COLOUR, captioned_panels, display_grey, heat_overlay, outline, roc_figure

__all__ = ["OutputCollector", "ZeroShotEvaluation", "first_test_dataset", "split_loaders"]


def split_loaders(
    datalist: str | Path | None,
    transform: Any,
    batch_size: int = 16,
    num_workers: int = 0,
    splits: Sequence[str] = ("validation", "test"),
    on_error: str = "skip",
) -> dict[str, DataLoader]:
    """One unshuffled ``DataLoader`` per split of a datalist (``{}`` when ``datalist`` is None or empty); an empty
    split raises ``ValueError`` naming the datalist. Items whose image cannot be read are skipped and reported
    (``on_error="skip"``, default; ``"raise"`` stops at the first)."""
    if not datalist:
        return {}
    loaders = {}
    for split in splits:
        items = load_datalist(datalist, split)
        if not items:
            raise ValueError(f"{datalist}: the {split!r} list is empty; zero-shot evaluation needs validation and test")
        dataset = build_dataset(items, transform, dataset_type="Dataset", on_error=on_error)
        loaders[split] = DataLoader(
            dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate_loaded
        )
    return loaders


def first_test_dataset(*task_loaders: Mapping[str, DataLoader]) -> Dataset:
    """The test dataset of the first task that has loaders (``evaluate.json``'s ``dataset``); ``ValueError`` when
    every task is off."""
    for loaders in task_loaders:
        if loaders:
            return loaders["test"].dataset
    raise ValueError("zero-shot evaluation has nothing to do: give classification_datalist or grounding_datalist")


class OutputCollector:
    """Keep an evaluator's predictions and targets on the CPU for metrics that need the whole split (thresholds,
    bootstrap): the prediction's ``fields`` (``"probabilities"``, ``"maps"``), every target tensor, and the first
    ``keep_images`` input images."""

    def __init__(self, fields: Sequence[str], keep_images: int = 0) -> None:
        self.fields = tuple(fields)
        self.keep_images = keep_images
        self.reset()

    def reset(self, engine: Engine | None = None) -> None:
        self._parts: dict[str, list[torch.Tensor]] = {}
        self.images: list[torch.Tensor] = []
        self.skipped: list[dict] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def detach(self, engine: Engine) -> None:
        engine.remove_event_handler(self.reset, Events.STARTED)
        engine.remove_event_handler(self, Events.ITERATION_COMPLETED)

    def __call__(self, engine: Engine) -> None:
        output = engine.state.output
        self.skipped += [
            {"image": item[SKIPPED], "reason": item["reason"]} for item in engine.state.batch.get(SKIPPED, [])
        ]
        if output["pred"] is None:  # every item of the batch was skipped
            return
        parts = {field: getattr(output["pred"], field) for field in self.fields}
        for key, value in {**parts, **output["label"]}.items():
            self._parts.setdefault(key, []).append(torch.as_tensor(value).detach().float().cpu())
        if len(self.images) < self.keep_images:
            self.images.extend(output["image"][: self.keep_images - len(self.images)].detach().float().cpu())

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in self._parts:
            raise ValueError("none of the split's items could be read; see the warnings above")
        return torch.cat(self._parts[key])


def _own_class_items(collected: OutputCollector) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grounding items -> ``(map of the item's class [M, h, w], truth [M, H, W] bool, class index [M])``."""
    index = collected["finding"].long()
    return collected["maps"][torch.arange(len(index)), index], collected["mask"][:, 0] > 0.5, index


class ZeroShotEvaluation:
    """Zero-shot classification and grounding: run ``evaluator`` (a ``SupervisedEvaluator`` whose inferer gives
    each class's prediction, see :class:`~medslip_monai.engines.PredictionInferer`) on the validation and test
    loaders of each task, choose thresholds on validation, score test and write ``metrics.json``, ``metrics.md``,
    ``roc.png`` and ``overlays/*.png`` into ``output_dir``.

    Classification batches hold ``label [B, K]``; grounding batches ``mask [B, 1, H, W]`` (the item's region) and
    ``finding [B]`` (its class index).

    Args:
        evaluator: the engine; its data loader is replaced by each split's in turn.
        output_dir: destination folder.
        classes: the dataset classes, in the order of the inferer's outputs.
        classification: ``{"validation": loader, "test": loader}`` or empty to skip the task.
        grounding: the same for grounding items.
        heatmap: ``"medslip"`` or ``"official"`` (see :func:`medslip_monai.grounding.heat_maps`); the inferer must
            use the same construction.
        threshold: one grounding threshold for every class; None chooses each class's on validation.
        bootstrap: resamples for the 95% intervals. Defaults to 1000.
        seed: of the resampling.
        overlays: test grounding items drawn with their heat map and ground-truth outline. Defaults to 12.
        config: settings recorded in ``metrics.json``.
        model_file: the weights evaluated, recorded with their sha256 (with the package version and the time).
        overwrite: replace an earlier evaluation's files in ``output_dir`` (otherwise the run refuses the folder,
            see :class:`~medslip_monai.reporting.OutputFolder`). Defaults to False.

    Items whose image cannot be read are skipped (``split_loaders``) and listed in ``metrics.json``.
    """

    RESULTS = ("metrics.json", "metrics.md", "roc.png", "overlays")

    def __init__(
        self,
        evaluator: Engine,
        output_dir: str | Path,
        classes: Sequence[str],
        classification: Mapping[str, DataLoader] | None = None,
        grounding: Mapping[str, DataLoader] | None = None,
        heatmap: str = "medslip",
        threshold: float | None = None,
        bootstrap: int = 1000,
        seed: int = 0,
        overlays: int = 12,
        config: Mapping | None = None,
        model_file: str | Path | None = None,
        overwrite: bool = False,
    ) -> None:
        self.evaluator = evaluator
        self.output_dir = Path(output_dir)
        self.classes = list(classes)
        self.tasks = {"classification": dict(classification or {}), "grounding": dict(grounding or {})}
        self.heatmap, self.threshold = heatmap, threshold
        self.bootstrap, self.seed, self.overlays = bootstrap, seed, overlays
        self.config = dict(config or {})
        self.model_file = model_file
        self.folder = OutputFolder(self.output_dir, self.RESULTS, flag(overwrite, "overwrite"))
        self.skipped: dict[str, list[dict]] = {}

    def _collect(self, task: str, split: str, fields: Sequence[str], keep_images: int = 0) -> OutputCollector:
        loader = self.tasks[task][split]
        collector = OutputCollector(fields, keep_images)
        collector.attach(self.evaluator)
        self.evaluator.data_loader = loader
        self.evaluator.state.epoch_length = len(loader)
        try:
            self.evaluator.run()
        finally:
            collector.detach(self.evaluator)
        if collector.skipped:
            self.skipped[f"{task}_{split}"] = collector.skipped
        return collector

    def run(self) -> dict[str, Any]:
        """Evaluate, write the files and return the report."""
        self.folder.claim()
        try:
            report = self._evaluate(self.folder.staging)
            self.folder.commit()
            return report
        finally:
            self.folder.release()

    def _evaluate(self, folder: Path) -> dict[str, Any]:
        """Score both tasks and write the files into ``folder``; returns the report."""
        report: dict[str, Any] = {"classes": self.classes, "num_images": {}, "config": self.config}
        self.skipped = {}
        if self.tasks["classification"]:
            val, test = (self._collect("classification", split, ["probabilities"]) for split in ("validation", "test"))
            splits = [(c["probabilities"].numpy(), c["label"].numpy().astype(int)) for c in (val, test)]
            report["classification"] = classification_metrics(*splits, self.classes, self.bootstrap, self.seed)
            report["num_images"].update(
                classification_validation=len(splits[0][1]), classification_test=len(splits[1][1])
            )
            roc_figure(folder / "roc.png", *splits[1], self.classes, report["classification"])
        if self.tasks["grounding"]:
            val = self._collect("grounding", "validation", ["maps"])
            test = self._collect("grounding", "test", ["maps"], keep_images=self.overlays)
            items = [_own_class_items(c) for c in (val, test)]
            report["grounding"] = grounding_metrics(
                *items, self.classes, self.heatmap, self.threshold, self.bootstrap, self.seed
            )
            report["num_images"].update(grounding_validation=len(items[0][2]), grounding_test=len(items[1][2]))
            report["overlays"] = self._draw(folder / "overlays", test.images, *items[1])
        report["skipped"] = self.skipped
        report["provenance"] = provenance(self.model_file)
        write_report(folder, report, _markdown(report))
        return report

    def _draw(
        self, folder: Path, images: Sequence[torch.Tensor], maps: torch.Tensor, truth: torch.Tensor, index: torch.Tensor
    ) -> list[str]:
        """The first test grounding items: the input beside its class's heat map with the region outlined."""
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for n, image in enumerate(images):
            heat = heat_maps(maps[n : n + 1], truth.shape[-2:], self.heatmap)[0]
            overlay = heat_overlay(image, heat)
            overlay[:, outline(truth[n])] = torch.tensor(OUTLINE_COLOUR)[:, None]
            name = self.classes[int(index[n])]
            caption = [f"{name}: heat map ({self.heatmap}), region outlined"]
            picture = captioned_panels([(display_grey(image), [f"test item {n}"]), (overlay, caption)])
            file = f"{n:03d}_{name}.png".replace("/", "_")
            picture.save(folder / file)
            written.append(file)
        return written


def _with_interval(values: Mapping, metric: str) -> str:
    interval = values.get(f"{metric}_ci95")
    return format_cell(values[metric], 3) + (f" {format_cell(interval, 3)}" if interval else "")


def _markdown(report: Mapping) -> list[str]:
    """``metrics.md``: classification and grounding tables with their 95% intervals and thresholds."""
    lines = ["# MeDSLIP zero-shot evaluation", ""]
    if "classification" in report:
        counts = report["num_images"]
        lines += [
            f"Classification on {counts['classification_test']} test images; thresholds chosen on "
            f"{counts['classification_validation']} validation images (max F1); 95% bootstrap intervals.",
            "",
        ]
        rows = [
            [name, *(_with_interval(values, m) for m in ("auc", "f1", "accuracy")), values.get("threshold", "")]
            for name, values in report["classification"].items()
        ]
        lines += markdown_table(["class", "AUC", "F1", "accuracy", "threshold"], rows, digits=3) + [""]
    if "grounding" in report:
        grounding = report["grounding"]
        lines += [
            f"Grounding on {grounding['mean']['items']} test (image, class) pairs; heat map `{grounding['heatmap']}`; "
            "each class's threshold chosen on validation (best mean Dice).",
            "",
        ]
        metrics = (
            "pointing_game",
            "pointing_game_centred",
            "pointing_game_strict",
            "recall",
            "precision",
            "iou",
            "dice",
        )
        rows = [
            [name, *(_with_interval(values, m) for m in metrics), values.get("threshold", "")]
            for name, values in grounding.items()
            if isinstance(values, Mapping)
        ]
        header = ["class", "pointing game", "centred", "strict", "recall", "precision", "IoU", "Dice", "threshold"]
        lines += markdown_table(header, rows, digits=3)
    return lines
