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
"""Zero-shot evaluation: class scores and heat maps from a predictor, thresholds chosen on validation and applied to
test, bootstrap confidence intervals, and the report files (``metrics.json``, ``metrics.md``, ROC curves, overlays).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from ignite.engine import Engine, Events
from monai.config import KeysCollection
from monai.data import DataLoader, Dataset
from monai.inferers import Inferer
from monai.transforms import MapTransform
from monai.utils import look_up_option
from PIL import Image
from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve
from torch import nn

from medslip_monai.data.datalist import load_datalist
from medslip_monai.engines.handlers import _json_safe, display_grey, grounding_overlay
from medslip_monai.engines.metrics import pointing_hits

__all__ = [
    "HEATMAPS",
    "ClassIndexd",
    "ClassScoresInferer",
    "OutputCollector",
    "collect_splits",
    "split_loaders",
    "max_f1_threshold",
    "classification_metrics",
    "heat_maps",
    "region_scores",
    "grounding_metrics",
    "write_zero_shot_report",
]

#: ``"medslip"``: bilinear upsampling and per-image min-max scaling; ``"official"``: the released scripts' maps
#: (divided by the largest value of the batch, nearest-neighbour upsampling).
HEATMAPS = ("medslip", "official")
THRESHOLD_CANDIDATES = tuple(np.round(np.linspace(0.05, 0.95, 19), 2))


class ClassIndexd(MapTransform):
    """Replace a class name (``"finding": "Effusion"``) by its index in ``classes`` (a long tensor); an unknown name
    raises ``ValueError`` naming it and the image."""

    def __init__(self, keys: KeysCollection, classes: Sequence[str], allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.classes = list(classes)

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            if d[key] not in self.classes:
                raise ValueError(f"{d.get('image', '?')}: class {d[key]!r} is not one of {self.classes}")
            d[key] = torch.tensor(self.classes.index(d[key]))
        return d


class ClassScoresInferer(Inferer):
    """``inferer(image, predictor) -> {"probs": [B, K], "maps": [B, K, h, w]}`` for the ``K`` dataset classes.

    Args:
        order: predictor output of each class (see :func:`medslip_monai.data.downstream.zero_shot_classes`).
        heatmap: ``"medslip"`` (maps as the predictor gives them) or ``"official"`` (each class's maps divided by
            their largest value in the batch, as the released grounding script does).
    """

    def __init__(self, order: Sequence[int], heatmap: str = "medslip") -> None:
        super().__init__()
        self.order = list(order)
        self.heatmap = look_up_option(heatmap, HEATMAPS)

    def __call__(self, inputs: torch.Tensor, network: nn.Module, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        outputs = network.predict(inputs)
        maps = outputs["maps"][:, self.order].float()
        if self.heatmap == "official":
            maps = maps / maps.amax(dim=(0, 2, 3), keepdim=True).clamp(min=1e-12)
        return {"probs": outputs["probabilities"][:, self.order].float(), "maps": maps}


class OutputCollector:
    """Keep an evaluator's predictions and targets (``output["pred"]`` and ``output["label"]`` tensors) on the CPU,
    and its first ``keep_images`` input images, for metrics that need the whole split (thresholds, bootstrap)."""

    def __init__(self, keep_images: int = 0) -> None:
        self.keep_images = keep_images
        self.reset()

    def reset(self, engine: Engine | None = None) -> None:
        self._parts: dict[str, list[torch.Tensor]] = {}
        self.images: list[torch.Tensor] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        output = engine.state.output
        for group in ("pred", "label"):
            for key, value in output[group].items():
                self._parts.setdefault(key, []).append(torch.as_tensor(value).detach().cpu())
        if len(self.images) < self.keep_images:
            self.images.extend(output["image"][: self.keep_images - len(self.images)].detach().float().cpu())

    def __getitem__(self, key: str) -> torch.Tensor:
        return torch.cat(self._parts[key])

    def __contains__(self, key: str) -> bool:
        return key in self._parts


def split_loaders(
    datalist: str | Path | None,
    transform: Any,
    batch_size: int = 16,
    num_workers: int = 0,
    splits: Sequence[str] = ("validation", "test"),
) -> dict[str, DataLoader]:
    """One unshuffled ``DataLoader`` per split of a datalist (``{}`` when ``datalist`` is None or empty); an empty
    split raises ``ValueError`` naming the datalist."""
    if not datalist:
        return {}
    loaders = {}
    for split in splits:
        items = load_datalist(datalist, split)
        if not items:
            raise ValueError(f"{datalist}: the {split!r} list is empty; zero-shot evaluation needs validation and test")
        loaders[split] = DataLoader(
            Dataset(items, transform), batch_size=batch_size, shuffle=False, num_workers=num_workers
        )
    return loaders


def collect_splits(
    evaluator: Engine, dataloaders: Mapping[str, Any], keep_images: int = 0
) -> dict[str, OutputCollector]:
    """Run ``evaluator`` once per split (``{"validation": loader, "test": loader}``) and return each split's outputs.

    The first ``keep_images`` images of the last split are kept (for overlays)."""
    collected = {}
    for n, (split, loader) in enumerate(dataloaders.items()):
        collector = OutputCollector(keep_images if n == len(dataloaders) - 1 else 0)
        collector.attach(evaluator)
        evaluator.data_loader = loader
        evaluator.state.epoch_length = len(loader)
        evaluator.run()
        evaluator.remove_event_handler(collector.reset, Events.STARTED)
        evaluator.remove_event_handler(collector, Events.ITERATION_COMPLETED)
        collected[split] = collector
    return collected


def max_f1_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The score threshold with the highest F1 on ``(scores, labels)``; 0.5 when there is no positive."""
    if labels.sum() == 0:
        return 0.5
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision[:-1] * recall[:-1] / np.clip(precision[:-1] + recall[:-1], 1e-12, None)
    return float(thresholds[int(np.argmax(f1))])


def _binary_scores(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    both = 0 < labels.sum() < len(labels)
    predicted = scores >= threshold
    tp = float((predicted & (labels == 1)).sum())
    f1 = 2 * tp / max(float(predicted.sum() + labels.sum()), 1.0)
    return {
        "auc": float(roc_auc_score(labels, scores)) if both else float("nan"),
        "f1": f1,
        "accuracy": float((predicted == (labels == 1)).mean()),
    }


def _interval(values: list[float]) -> list[float]:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return (
        [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))] if values.size else [float("nan")] * 2
    )


def classification_metrics(
    validation: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    classes: Sequence[str],
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """AUC, F1 and accuracy per class and their means on ``test = (probabilities [M, K], labels [M, K])``.

    Each class's threshold is the max-F1 threshold on ``validation`` (never the test labels, unlike the released
    scripts). 95% confidence intervals come from ``bootstrap`` resamples of the test images (percentile method).
    """
    (val_probs, val_labels), (probs, labels) = validation, test
    thresholds = [max_f1_threshold(val_probs[:, k], val_labels[:, k]) for k in range(len(classes))]

    def scores(rows: np.ndarray) -> dict[str, dict[str, float]]:
        per_class = {
            name: _binary_scores(probs[rows, k], labels[rows, k], thresholds[k]) for k, name in enumerate(classes)
        }
        per_class["mean"] = {
            m: float(np.nanmean([v[m] for v in per_class.values()])) for m in ("auc", "f1", "accuracy")
        }
        return per_class

    point = scores(np.arange(len(labels)))
    rng = np.random.default_rng(seed)
    resampled = [scores(rng.integers(0, len(labels), len(labels))) for _ in range(bootstrap)]
    result: dict[str, Any] = {}
    for name, values in point.items():
        result[name] = dict(values)
        if bootstrap:
            result[name].update({f"{m}_ci95": _interval([r[name][m] for r in resampled]) for m in values})
        if name != "mean":
            k = list(classes).index(name)
            result[name].update(threshold=thresholds[k], positives=int(labels[:, k].sum()))
    return result


def heat_maps(maps: torch.Tensor, size: Sequence[int], heatmap: str = "medslip") -> torch.Tensor:
    """Token-grid maps ``[M, h, w]`` -> heat maps ``[M, H, W]`` in [0, 1] (see ``HEATMAPS``)."""
    heatmap = look_up_option(heatmap, HEATMAPS)
    if heatmap == "official":
        return F.interpolate(maps[:, None].float(), size=tuple(size), mode="nearest")[:, 0].clamp(0, 1)
    up = F.interpolate(maps[:, None].float(), size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    low, high = up.amin((1, 2), keepdim=True), up.amax((1, 2), keepdim=True)
    return (up - low) / (high - low).clamp(min=1e-12)


def region_scores(heat: torch.Tensor, truth: torch.Tensor, threshold: float | torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image: recall (share of the region covered), precision (share of the prediction inside the region), IoU
    and Dice of ``heat >= threshold`` against the boolean ``truth`` (both ``[M, H, W]``; ``threshold`` a number or
    one per image, ``[M, 1, 1]``)."""
    predicted = heat >= threshold
    inter = (predicted & truth).flatten(1).sum(1).double()
    area_p, area_t = predicted.flatten(1).sum(1).double(), truth.flatten(1).sum(1).double()
    return {
        "recall": inter / area_t.clamp(min=1),
        "precision": inter / area_p.clamp(min=1),
        "iou": inter / (area_p + area_t - inter).clamp(min=1),
        "dice": 2 * inter / (area_p + area_t).clamp(min=1),
    }


def _grounding_items(
    collector: OutputCollector, heatmap: str, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each item's map of its own class, its heat map, boolean ground truth and class index (first ``limit`` items)."""
    index = collector["finding"].long()[:limit]
    maps = collector["maps"][: len(index)][torch.arange(len(index)), index]
    truth = collector["truth"][: len(index), 0] > 0.5
    return maps, heat_maps(maps, truth.shape[-2:], heatmap), truth, index


def grounding_metrics(
    validation: OutputCollector,
    test: OutputCollector,
    classes: Sequence[str],
    heatmap: str = "medslip",
    threshold: float | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Pointing game (official patch rule and the strict pixel rule), recall, precision, IoU and Dice of the heat
    maps on the test items, per class and overall, with bootstrap 95% intervals of the overall values.

    Each class's binarising threshold is the candidate with the best mean Dice on that class's validation items
    (regions differ in size from class to class; a class without validation items gets the threshold chosen on all
    of them) unless ``threshold`` is given.
    """
    _, val_heat, val_truth, val_index = _grounding_items(validation, heatmap)
    candidates = THRESHOLD_CANDIDATES + ((0.0,) if heatmap == "official" else ())

    def best(rows: torch.Tensor) -> float:
        dice = {t: float(region_scores(val_heat[rows], val_truth[rows], t)["dice"].mean()) for t in candidates}
        return max(dice, key=dice.get)

    overall = best(torch.ones_like(val_index, dtype=torch.bool)) if threshold is None else float(threshold)
    thresholds = [
        overall if threshold is not None or not (val_index == k).any() else best(val_index == k)
        for k in range(len(classes))
    ]
    maps, heat, truth, index = _grounding_items(test, heatmap)
    per_item = region_scores(heat, truth, torch.tensor(thresholds, dtype=heat.dtype)[index][:, None, None])
    for mode, name in (("patch", "pointing_game"), ("pixel", "pointing_game_strict")):
        hits, _ = pointing_hits(maps[:, None], truth[:, None], mode=mode)
        per_item[name] = hits[:, 0].double()
    result: dict[str, Any] = {"heatmap": heatmap}
    for k, name in enumerate(classes):
        chosen_rows = index == k
        if chosen_rows.any():
            result[name] = {m: float(v[chosen_rows].mean()) for m, v in per_item.items()}
            result[name].update(items=int(chosen_rows.sum()), threshold=float(thresholds[k]))
    result["mean"] = {m: float(v.mean()) for m, v in per_item.items()}
    result["mean"]["items"] = len(index)
    rng = np.random.default_rng(seed)
    draws = [torch.from_numpy(rng.integers(0, len(index), len(index))) for _ in range(bootstrap)]
    if bootstrap:
        result["mean"].update(
            {f"{m}_ci95": _interval([float(v[d].mean()) for d in draws]) for m, v in per_item.items()}
        )
    return result


def _roc_figure(path: Path, probs: np.ndarray, labels: np.ndarray, classes: Sequence[str], aucs: Mapping) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(5.5, 5.5), dpi=110)
    for k, name in enumerate(classes):
        if 0 < labels[:, k].sum() < len(labels):
            fpr, tpr, _ = roc_curve(labels[:, k], probs[:, k])
            axes.plot(fpr, tpr, lw=1.4, label=f"{name} ({aucs[name]['auc']:.3f})")
    axes.plot([0, 1], [0, 1], "k:", lw=0.8)
    axes.set(
        xlabel="false positive rate",
        ylabel="true positive rate",
        title="Zero-shot ROC (test)",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    axes.legend(loc="lower right", fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _save_overlays(folder: Path, collector: OutputCollector, heatmap: str, classes: Sequence[str]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    _, heat, truth, index = _grounding_items(collector, heatmap, limit=len(collector.images))
    written = []
    for n, image in enumerate(collector.images):
        overlay = grounding_overlay(image, heat[n])
        edge = truth[n].float()
        edge = (F.max_pool2d(edge[None, None], 3, 1, 1)[0, 0] - edge) > 0  # one-pixel outline of the region
        overlay[:, edge] = torch.tensor([0.2, 0.8, 1.0])[:, None]
        panel = torch.cat([display_grey(image).expand(3, -1, -1), overlay], dim=2)
        name = f"{n:03d}_{classes[int(index[n])]}.png".replace("/", "_")
        Image.fromarray((panel.permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(folder / name)
        written.append(name)
    return written


def _markdown(report: Mapping) -> str:
    def cell(values: Mapping, metric: str) -> str:
        interval = values.get(f"{metric}_ci95")
        text = f"{values[metric]:.3f}"
        return text + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")

    lines = ["# MeDSLIP zero-shot evaluation", ""]
    if "classification" in report:
        c = report["classification"]
        lines += [
            f"Classification on {report['num_images']['classification_test']} test images; thresholds chosen "
            f"on {report['num_images']['classification_validation']} validation images (max F1); 95% bootstrap "
            "intervals.",
            "",
            "| class | AUC | F1 | accuracy | threshold |",
            "|---|---|---|---|---|",
        ]
        for name, values in c.items():
            threshold = f"{values['threshold']:.3f}" if "threshold" in values else ""
            lines.append(
                f"| {name} | {cell(values, 'auc')} | {cell(values, 'f1')} | {cell(values, 'accuracy')} | {threshold} |"
            )
        lines.append("")
    if "grounding" in report:
        g = report["grounding"]
        lines += [
            f"Grounding on {g['mean']['items']} test (image, class) pairs; heat map `{g['heatmap']}`; each class's "
            "threshold chosen on validation (best mean Dice).",
            "",
            "| class | pointing game | strict pointing game | recall | precision | IoU | Dice | threshold |",
            "|---|---|---|---|---|---|---|---|",
        ]
        metrics = ("pointing_game", "pointing_game_strict", "recall", "precision", "iou", "dice")
        for name, values in g.items():
            if isinstance(values, Mapping):
                threshold = f"{values['threshold']:.2f}" if "threshold" in values else ""
                lines.append(f"| {name} | " + " | ".join(cell(values, m) for m in metrics) + f" | {threshold} |")
    return "\n".join(lines) + "\n"


def write_zero_shot_report(
    output_dir: str | Path,
    classes: Sequence[str],
    classification: Mapping[str, OutputCollector] | None = None,
    grounding: Mapping[str, OutputCollector] | None = None,
    heatmap: str = "medslip",
    threshold: float | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    config: Mapping | None = None,
) -> dict[str, Any]:
    """Score the collected validation and test outputs and write ``metrics.json``, ``metrics.md``, ``roc.png`` and
    ``overlays/*.png`` into ``output_dir``; returns the report."""
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"classes": list(classes), "num_images": {}, "config": dict(config or {})}
    if classification:
        val, test = classification["validation"], classification["test"]
        split = [(c["probs"].numpy(), c["label"].numpy().astype(int)) for c in (val, test)]
        report["classification"] = classification_metrics(split[0], split[1], classes, bootstrap, seed)
        report["num_images"].update(classification_validation=len(split[0][1]), classification_test=len(split[1][1]))
        _roc_figure(output / "roc.png", *split[1], classes, report["classification"])
    if grounding:
        val, test = grounding["validation"], grounding["test"]
        report["grounding"] = grounding_metrics(val, test, classes, heatmap, threshold, bootstrap, seed)
        report["num_images"].update(grounding_validation=len(val["finding"]), grounding_test=len(test["finding"]))
        report["overlays"] = _save_overlays(output / "overlays", test, heatmap, classes)
    report["written"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    (output / "metrics.json").write_text(json.dumps(_json_safe(report), indent=1, default=str))
    (output / "metrics.md").write_text(_markdown(report))
    return report
