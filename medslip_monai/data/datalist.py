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
"""Decathlon-style datalists with paths resolved and checked up front."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.data import CacheDataset, Dataset, PersistentDataset, list_data_collate
from monai.transforms import Compose
from monai.utils import look_up_option

from medslip_monai.data.transforms import item_name

__all__ = [
    "label_fraction",
    "load_datalist",
    "build_dataset",
    "collate_loaded",
    "DEFAULT_PATH_KEYS",
    "DATASET_TYPES",
    "ERROR_POLICIES",
    "SKIPPED",
    "SkipFailuresCompose",
    "is_skipped",
]

logger = logging.getLogger(__name__)

#: Item keys whose string values are file paths (relative ones are resolved against the datalist's folder).
DEFAULT_PATH_KEYS = ("image", "label", "mask", "labelmap", "boxmap")


def _label_errors(label: Any, num_classes: int | None, source: str) -> list[str]:
    """What is wrong with one item's ``label`` (``[]`` when nothing), each text to follow ``split[index].label``: it
    must be a string (a mask path) or a list of 0/1 values, ``num_classes`` long when given (``source`` says why)."""
    if isinstance(label, str):
        return []
    if not isinstance(label, list):
        return [f" is {label!r}, neither a list of 0/1 values nor a mask path"]
    if not label:
        return [" is an empty list"]
    errors = []
    if num_classes is not None and len(label) != num_classes:
        errors.append(f" has {len(label)} value(s), expected {num_classes} ({source})")
    for position, value in enumerate(label):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value not in (0, 1):
            errors.append(f"[{position}] is {value!r}, not 0 or 1")
    return errors


def _listing(problems: Sequence[str], limit: int = 20) -> str:
    return "\n  ".join(problems[:limit]) + ("\n  ..." if len(problems) > limit else "")


def load_datalist(
    datalist: str | os.PathLike,
    split: str = "training",
    base_dir: str | os.PathLike | None = None,
    path_keys: Sequence[str] = DEFAULT_PATH_KEYS,
    check_files: bool = True,
    check_labels: bool = True,
    num_classes: int | None = None,
) -> list[dict]:
    """Read one split of a decathlon-style datalist (``{"training": [...], "validation": [...], ...}``).

    Unlike ``monai.data.load_decathlon_datalist``, every key in ``path_keys`` holding a string is resolved (not only
    ``image`` and ``label``), and missing files are reported together, each with the datalist and split they come
    from, before any training starts. So are bad labels: an item's ``label`` must be a string (a mask path, as in
    segmentation lists) or a non-empty list of 0/1 values (``true``/``false`` are refused), all of one length: the
    datalist's ``classes`` when it has them, else ``num_classes`` when given, else the first item's.

    Args:
        datalist: the JSON file (UTF-8).
        split: the list to read. Defaults to ``"training"``.
        base_dir: folder that relative paths start from; defaults to the datalist's folder.
        path_keys: keys holding file paths.
        check_files: raise ``FileNotFoundError`` listing every missing file. Defaults to True.
        check_labels: raise ``ValueError`` listing every bad ``label`` (datalist, split, item index, value).
            Defaults to True.
        num_classes: the length every label list must have (the config's number of classes); None: the length of
            the datalist's ``classes`` list, or else of the split's first label list.

    Raises:
        FileNotFoundError: the datalist, or a file it lists, does not exist.
        ValueError: the datalist is not UTF-8 JSON, the split is not a list of objects, or a label is bad.
        KeyError: the datalist has no ``split`` list.
    """
    datalist = Path(datalist)
    try:
        content = json.loads(datalist.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"datalist {datalist} does not exist") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"datalist {datalist} is not UTF-8 text: {e}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"datalist {datalist} is not valid JSON: {e}") from None
    except RecursionError:
        raise ValueError(f"datalist {datalist} is nested too deeply to be a datalist") from None
    if not isinstance(content, dict) or split not in content:
        found = list(content) if isinstance(content, dict) else type(content).__name__
        raise KeyError(f"datalist {datalist} has no {split!r} list (found {found})")
    if not isinstance(content[split], list):
        raise ValueError(f"datalist {datalist}: {split!r} is a {type(content[split]).__name__}, not a list of items")
    source = "num_classes"
    if num_classes is None and isinstance(content.get("classes"), list):
        num_classes, source = len(content["classes"]), "the datalist's classes"
    base = Path(base_dir) if base_dir is not None else datalist.parent
    items, missing, bad_labels = [], [], []
    for index, entry in enumerate(content[split]):
        if not isinstance(entry, dict):
            raise ValueError(f"datalist {datalist} {split}[{index}] is not an object: {entry!r}")
        item = dict(entry)
        if check_labels and "label" in item:
            if num_classes is None and isinstance(item["label"], list) and item["label"]:
                num_classes, source = len(item["label"]), f"as {split}[{index}].label"  # the first list sets it
            errors = _label_errors(item["label"], num_classes, source)
            bad_labels += [f"{split}[{index}].label{error}" for error in errors]
        for key in path_keys:
            if isinstance(item.get(key), str):
                path = Path(item[key]) if os.path.isabs(item[key]) else base / item[key]
                item[key] = str(path)
                if check_files and not path.is_file():
                    missing.append(f"{split}[{index}].{key}: {path}")
        items.append(item)
    if bad_labels:
        raise ValueError(
            f"datalist {datalist}: {len(bad_labels)} bad label(s) (a label is a list of 0/1 values, one per class, "
            f"or a mask path; check_labels=False skips this check):\n  {_listing(bad_labels)}"
        )
    if missing:
        raise FileNotFoundError(f"datalist {datalist}: {len(missing)} missing file(s):\n  {_listing(missing)}")
    return items


DATASET_TYPES = ("Dataset", "CacheDataset", "PersistentDataset")
ERROR_POLICIES = ("raise", "skip")


def _reason(error: BaseException) -> str:
    """The error a transform raised, unwrapped from MONAI's "applying transform ..." ``RuntimeError``."""
    while isinstance(error, RuntimeError) and str(error).startswith("applying transform") and error.__cause__:
        error = error.__cause__
    return f"{type(error).__name__}: {error}"


#: The key that marks a skipped item: it becomes ``{SKIPPED: item name, "reason": why}``, a plain dict that caches
#: keep (on disk too, loadable with ``weights_only=True``) and :func:`collate_loaded` leaves out.
SKIPPED = "skipped_item"


def is_skipped(item: Any) -> bool:
    """True for an item that the ``"skip"`` policy left out."""
    return isinstance(item, Mapping) and SKIPPED in item


def _source(item: Any) -> str:
    """The file an item comes from (its ``image`` path), or a description of it."""
    if isinstance(item, Mapping) and isinstance(item.get("image"), str):
        return item["image"]
    return item_name(item) if isinstance(item, Mapping) else "item"


class SkipFailuresCompose(Compose):
    """A ``Compose`` for the ``"skip"`` policy: an item whose transforms raise becomes a skip marker (see
    ``SKIPPED``) that later stages pass on and :func:`collate_loaded` leaves out of the batch; every time a skipped
    item is drawn, it is logged with the reason and a running count.

    A caching dataset keeps the marker of an item that fails in its cached (deterministic) part, so the failing
    transforms run once; the item is logged when it fails and again whenever a later (random) stage receives it,
    that is at every epoch of a training pipeline.
    """

    skipped = 0

    def __call__(self, input_: Any, start: int = 0, end: int | None = None, threading: bool = False, lazy=None) -> Any:
        if is_skipped(input_):
            failure = input_
        else:
            try:
                return super().__call__(input_, start=start, end=end, threading=threading, lazy=lazy)
            except Exception as e:
                failure = {SKIPPED: _source(input_), "reason": _reason(e)}
        self.skipped += 1
        logger.warning(
            "skipping item %s: %s (%d item(s) skipped by this process)",
            failure[SKIPPED],
            failure["reason"],
            self.skipped,
        )
        return failure


def collate_loaded(batch: Sequence[Any]) -> Any:
    """MONAI's ``list_data_collate`` over the items that loaded; the skip markers of the ``"skip"`` policy (see
    :class:`SkipFailuresCompose`) are left out of the tensors and listed under ``SKIPPED`` (a batch of skipped
    items only is ``{SKIPPED: [...]}``, with no image). Raises ``RuntimeError`` for a batch of None items only."""
    loaded = [item for item in batch if item is not None and not is_skipped(item)]
    skipped = [item for item in batch if is_skipped(item)]
    if not loaded:
        if skipped:
            return {SKIPPED: skipped}
        raise RuntimeError(f"none of the {len(batch)} items of a batch could be loaded; see the warnings above")
    collated = list_data_collate(loaded)
    if skipped:
        collated[SKIPPED] = skipped
    return collated


def build_dataset(
    data: Sequence[dict],
    transform: Callable,
    dataset_type: str = "CacheDataset",
    cache_dir: str | os.PathLike | None = None,
    cache_rate: float = 1.0,
    num_workers: int | None = 1,
    on_error: str = "raise",
) -> Dataset:
    """One of MONAI's ``Dataset``, ``CacheDataset`` (deterministic transforms cached in memory) or
    ``PersistentDataset`` (cached on disk in ``cache_dir``), chosen by name so configs can switch with one value.

    ``on_error="raise"`` (default) stops at the first item whose transforms fail, with the error naming it;
    ``"skip"`` logs the item, the reason and a running count and leaves it out of its batch (use
    :func:`collate_loaded` as the loader's ``collate_fn``): the transforms run in a :class:`SkipFailuresCompose`.
    """
    dataset_type = look_up_option(dataset_type, DATASET_TYPES)
    if look_up_option(on_error, ERROR_POLICIES) == "skip":
        transform = SkipFailuresCompose(transform.transforms if isinstance(transform, Compose) else [transform])
    if dataset_type == "CacheDataset":
        return CacheDataset(data, transform, cache_rate=cache_rate, num_workers=num_workers, progress=False)
    if dataset_type == "PersistentDataset":
        if cache_dir is None:
            raise ValueError("PersistentDataset needs a cache_dir")
        return PersistentDataset(data, transform, cache_dir=cache_dir)
    return Dataset(data, transform)


def label_fraction(items: Sequence[dict], fraction: float, seed: int = 0) -> list[dict]:
    """A fixed random share of ``items`` (at least one) for label-efficiency experiments (1%, 10%, 100%).

    The same ``seed`` draws nested subsets: the 1% items are among the 10% items. Raises ``ValueError`` for a
    fraction outside (0, 1].
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    order = np.random.default_rng(seed).permutation(len(items))
    keep = max(1, int(round(fraction * len(items))))
    return [items[i] for i in sorted(order[:keep])]
