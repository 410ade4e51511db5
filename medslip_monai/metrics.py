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
"""Every metric MeDSLIP is scored with, in one place.

* During training (Ignite metrics, reduced over ``torch.distributed`` ranks): :class:`FindingAUC`,
  :class:`PointingGame` (:func:`pointing_hits`).
* On whole splits (zero-shot evaluation): :func:`classification_metrics` (AUC, F1, accuracy at thresholds chosen on
  validation) and :func:`grounding_metrics` (pointing game, recall, precision, IoU, Dice of heat maps), each with
  bootstrap 95% intervals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import ignite.distributed as idist
import numpy as np
import torch
import torch.nn.functional as F
from ignite.metrics import Metric
from monai.metrics import compute_roc_auc
from monai.utils import evenly_divisible_all_gather, look_up_option
from sklearn.metrics import precision_recall_curve, roc_auc_score

from medslip_monai.grounding import heat_maps, token_of_pixels, upsample_tokens

logger = logging.getLogger(__name__)

__all__ = [
    "POINTING_MODES",
    "THRESHOLD_CANDIDATES",
    "FindingAUC",
    "PointingGame",
    "binary_scores",
    "bootstrap_interval",
    "classification_metrics",
    "grounding_metrics",
    "max_f1_threshold",
    "pointing_hits",
    "region_scores",
]

POINTING_MODES = ("patch", "centred", "pixel")
#: Heat-map thresholds tried on validation for each finding's grounding region.
THRESHOLD_CANDIDATES = tuple(float(t) for t in np.round(np.linspace(0.05, 0.95, 19), 2))


def pointing_hits(maps: torch.Tensor, masks: torch.Tensor, mode: str = "patch") -> tuple[torch.Tensor, torch.Tensor]:
    """Pointing game per (image, finding).

    Args:
        maps: grounding maps ``[B, N, h, w]`` on the token grid.
        masks: ground-truth masks ``[B, N, H, W]`` (H, W multiples of h, w in ``"patch"`` mode).
        mode: ``"patch"`` (the released MeDSLIP/MedKLIP rule: the map is upsampled by nearest-neighbour repetition
            and a hit is any maximal pixel inside the region, i.e. the patch of any token holding the maximum
            touches the region; ties included), ``"centred"`` (the same with each token's patch centred where its
            receptive field is, see :mod:`medslip_monai.grounding`: the released patches sit half a token down and
            right of what the tokens see) or ``"pixel"`` (stricter: the first peak of the map upsampled with
            :func:`~medslip_monai.grounding.upsample_tokens` lies inside the region).

    Returns:
        ``hits [B, N]`` and ``valid [B, N]`` (the mask is not empty).
    """
    mode = look_up_option(mode, POINTING_MODES)
    inside = masks.float() > 0.5
    valid = inside.flatten(2).any(-1)
    if mode in ("patch", "centred"):
        h, w = maps.shape[-2:]
        if mode == "patch":  # per token: its patch meets the region
            touched = F.adaptive_max_pool2d(inside.float(), (h, w)) > 0.5
        else:
            rows = F.one_hot(token_of_pixels(masks.shape[-2], h), h).to(masks.device, torch.float32)  # [H, h]
            columns = F.one_hot(token_of_pixels(masks.shape[-1], w), w).to(masks.device, torch.float32)  # [W, w]
            touched = rows.T @ inside.float() @ columns > 0
        flat = maps.float().flatten(2)
        peaks = flat == flat.amax(-1, keepdim=True)
        return (peaks & touched.flatten(2)).any(-1), valid
    upsampled = upsample_tokens(maps.float(), masks.shape[-2:])
    peak = upsampled.flatten(2).argmax(-1, keepdim=True)
    return inside.flatten(2).gather(-1, peak).squeeze(-1), valid


class FindingAUC(Metric):
    """ROC-AUC of each finding and their mean over the findings whose labels hold both classes.

    ``output_transform`` must give ``(probabilities [B, N], labels [B, N])``. The result is a mapping
    ``{"auc/<finding>": value, "auc/mean": value}``; a finding whose labels are all one class scores NaN (with a
    warning) and is left out of the mean. With ``reduction="mean"`` the result is the mean alone, a key metric for
    model selection that stays usable when a finding has no positive: it is the macro mean of MONAI's ``ROCAUC``
    when every finding has both classes, and minus infinity (never better than a real score) when none has or when
    any probability is NaN or infinite (weights that diverged are never selected).
    Under ``torch.distributed`` every rank's scores are gathered first (ranks may hold different numbers of images).
    """

    def __init__(
        self, class_names: Sequence[str], output_transform: Callable = lambda x: x, reduction: str = "all"
    ) -> None:
        self.class_names = list(class_names)
        self.reduction = look_up_option(reduction, ("all", "mean"))
        super().__init__(output_transform=output_transform)

    def reset(self) -> None:
        self._probs: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    def update(self, output: tuple[torch.Tensor, torch.Tensor]) -> None:
        probs, labels = output
        self._probs.append(probs.detach().float().cpu())
        self._labels.append(labels.detach().float().cpu())

    def compute(self) -> dict[str, float]:
        probs, labels = torch.cat(self._probs), torch.cat(self._labels)
        if idist.get_world_size() > 1:
            device = idist.device()
            probs = evenly_divisible_all_gather(probs.to(device)).cpu()
            labels = evenly_divisible_all_gather(labels.to(device)).cpu()
        values = {}
        broken = [name for k, name in enumerate(self.class_names) if not torch.isfinite(probs[:, k]).all()]
        for k, name in enumerate(self.class_names):
            column = labels[:, k]
            both = bool((column == 0).any() and (column == 1).any())
            usable = both and name not in broken
            values[f"auc/{name}"] = float(compute_roc_auc(probs[:, k], column)) if usable else float("nan")
        if broken:
            logger.warning("NaN or infinite probabilities for %s: no AUC, and no model is selected on them", broken)
        undefined = [name for name in self.class_names if np.isnan(values[f"auc/{name}"]) and name not in broken]
        if undefined:
            logger.warning("no AUC for %s: its labels hold one class only; the mean is over the others", undefined)
        scores = [v for v in values.values() if not np.isnan(v)]
        values["auc/mean"] = float(np.mean(scores)) if scores and not broken else float("nan")
        if self.reduction == "mean":
            return values["auc/mean"] if scores and not broken else float("-inf")
        return values


class PointingGame(Metric):
    """Pointing-game hit rate of grounding maps against masks, per finding and overall.

    ``output_transform`` must give ``(maps [B, N, h, w], masks [B, N, H, W])``. The result is a mapping
    ``{"<prefix>/<finding>": value, "<prefix>/mean": overall}``; findings never present score NaN. Hits and counts
    are summed over the ranks of a ``torch.distributed`` run.

    Args:
        class_names: the findings, in output order.
        mode: ``"patch"`` (released rule), ``"centred"`` or ``"pixel"`` (strict), see :func:`pointing_hits`.
        prefix: name of the metric in the result keys. Defaults to ``"pointing_game"``.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        output_transform: Callable = lambda x: x,
        mode: str = "patch",
        prefix: str = "pointing_game",
    ) -> None:
        self.class_names = list(class_names)
        self.mode = mode
        self.prefix = prefix
        super().__init__(output_transform=output_transform)

    def reset(self) -> None:
        self._hits = torch.zeros(len(self.class_names), dtype=torch.float64)
        self._counts = torch.zeros(len(self.class_names), dtype=torch.float64)

    def update(self, output: tuple[torch.Tensor, torch.Tensor]) -> None:
        hits, valid = pointing_hits(*output, mode=self.mode)
        self._hits += (hits & valid).sum(0).double().cpu()
        self._counts += valid.sum(0).double().cpu()

    def compute(self) -> dict[str, float]:
        hits, counts = self._hits, self._counts
        if idist.get_world_size() > 1:
            device = idist.device()
            hits, counts = idist.all_reduce(hits.to(device)).cpu(), idist.all_reduce(counts.to(device)).cpu()
        values = {
            f"{self.prefix}/{name}": float(h / c) if c > 0 else float("nan")
            for name, h, c in zip(self.class_names, hits, counts)
        }
        total = float(counts.sum())
        values[f"{self.prefix}/mean"] = float(hits.sum()) / total if total > 0 else float("nan")
        return values


def max_f1_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The score threshold with the highest F1 on ``(scores, labels)``; 0.5 when there is no positive."""
    if labels.sum() == 0:
        return 0.5
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision[:-1] * recall[:-1] / np.clip(precision[:-1] + recall[:-1], 1e-12, None)
    return float(thresholds[int(np.argmax(f1))])


def binary_scores(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """AUC (NaN unless both classes occur), F1 and accuracy of ``scores >= threshold`` against 0/1 ``labels``."""
    both = 0 < labels.sum() < len(labels)
    predicted = scores >= threshold
    tp = float((predicted & (labels == 1)).sum())
    return {
        "auc": float(roc_auc_score(labels, scores)) if both else float("nan"),
        "f1": 2 * tp / max(float(predicted.sum() + labels.sum()), 1.0),
        "accuracy": float((predicted == (labels == 1)).mean()),
    }


def bootstrap_interval(values: Sequence[float]) -> list[float]:
    """The 2.5th and 97.5th percentiles of the finite ``values`` (NaN when there are none)."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return (
        [float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))] if finite.size else [float("nan")] * 2
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
            name: binary_scores(probs[rows, k], labels[rows, k], thresholds[k]) for k, name in enumerate(classes)
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
            result[name].update({f"{m}_ci95": bootstrap_interval([r[name][m] for r in resampled]) for m in values})
        if name != "mean":
            k = list(classes).index(name)
            result[name].update(threshold=thresholds[k], positives=int(labels[:, k].sum()))
    return result


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


def grounding_metrics(
    validation: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    classes: Sequence[str],
    heatmap: str = "medslip",
    threshold: float | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Pointing game (released patch rule and the strict pixel rule), recall, precision, IoU and Dice of the heat
    maps of each grounding item's own class, per class and overall, with bootstrap 95% intervals of the overall
    values.

    Args:
        validation: ``(maps [M, h, w], truth [M, H, W] bool, class index [M])`` of the validation items.
        test: the same for the test items, which are scored.
        classes: class names by index.
        heatmap: heat-map construction, see :func:`medslip_monai.grounding.heat_maps`.
        threshold: binarising threshold for every class; None (default) chooses each class's on its validation items
            (best mean Dice among ``THRESHOLD_CANDIDATES``, plus 0 for ``"official"`` maps; a class without
            validation items gets the one chosen on all of them).
        bootstrap: resamples of the test items for the intervals.
        seed: of the resampling.
    """
    val_maps, val_truth, val_index = validation
    val_heat = heat_maps(val_maps, val_truth.shape[-2:], heatmap)
    candidates = THRESHOLD_CANDIDATES + ((0.0,) if heatmap == "official" else ())

    def best(rows: torch.Tensor) -> float:
        dice = {t: float(region_scores(val_heat[rows], val_truth[rows], t)["dice"].mean()) for t in candidates}
        return max(dice, key=dice.get)

    overall = best(torch.ones_like(val_index, dtype=torch.bool)) if threshold is None else float(threshold)
    thresholds = [
        overall if threshold is not None or not (val_index == k).any() else best(val_index == k)
        for k in range(len(classes))
    ]
    maps, truth, index = test
    heat = heat_maps(maps, truth.shape[-2:], heatmap)
    per_item = region_scores(heat, truth, torch.tensor(thresholds, dtype=heat.dtype)[index][:, None, None])
    for mode, name in (
        ("patch", "pointing_game"),
        ("centred", "pointing_game_centred"),
        ("pixel", "pointing_game_strict"),
    ):
        hits, _ = pointing_hits(maps[:, None], truth[:, None], mode=mode)
        per_item[name] = hits[:, 0].double()
    result: dict[str, Any] = {"heatmap": heatmap}
    for k, name in enumerate(classes):
        rows = index == k
        if rows.any():
            result[name] = {m: float(v[rows].mean()) for m, v in per_item.items()}
            result[name].update(items=int(rows.sum()), threshold=float(thresholds[k]))
    result["mean"] = {m: float(v.mean()) for m, v in per_item.items()}
    result["mean"]["items"] = len(index)
    if bootstrap:
        rng = np.random.default_rng(seed)
        draws = [torch.from_numpy(rng.integers(0, len(index), len(index))) for _ in range(bootstrap)]
        result["mean"].update(
            {f"{m}_ci95": bootstrap_interval([float(v[d].mean()) for d in draws]) for m, v in per_item.items()}
        )
    return result
