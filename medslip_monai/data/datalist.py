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


def load_datalist(
    datalist: str | os.PathLike,
    split: str = "training",
    base_dir: str | os.PathLike | None = None,
    path_keys: Sequence[str] = DEFAULT_PATH_KEYS,
    check_files: bool = True,
) -> list[dict]:
    """Read one split of a decathlon-style datalist (``{"training": [...], "validation": [...], ...}``).

    Unlike ``monai.data.load_decathlon_datalist``, every key in ``path_keys`` holding a string is resolved (not only
    ``image`` and ``label``), and missing files are reported together, each with the datalist and split they come
    from, before any training starts.

    Args:
        datalist: the JSON file.
        split: the list to read. Defaults to ``"training"``.
        base_dir: folder that relative paths start from; defaults to the datalist's folder.
        path_keys: keys holding file paths.
        check_files: raise ``FileNotFoundError`` listing every missing file. Defaults to True.
    """
    datalist = Path(datalist)
    try:
        content = json.loads(datalist.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"datalist {datalist} does not exist") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"datalist {datalist} is not valid JSON: {e}") from None
    if not isinstance(content, dict) or split not in content:
        found = list(content) if isinstance(content, dict) else type(content).__name__
        raise KeyError(f"datalist {datalist} has no {split!r} list (found {found})")
    base = Path(base_dir) if base_dir is not None else datalist.parent
    items, missing = [], []
    for index, entry in enumerate(content[split]):
        if not isinstance(entry, dict):
            raise ValueError(f"datalist {datalist} {split}[{index}] is not an object: {entry!r}")
        item = dict(entry)
        for key in path_keys:
            if isinstance(item.get(key), str):
                path = Path(item[key]) if os.path.isabs(item[key]) else base / item[key]
                item[key] = str(path)
                if check_files and not path.is_file():
                    missing.append(f"{split}[{index}].{key}: {path}")
        items.append(item)
    if missing:
        shown = "\n  ".join(missing[:20]) + ("\n  ..." if len(missing) > 20 else "")
        raise FileNotFoundError(f"datalist {datalist}: {len(missing)} missing file(s):\n  {shown}")
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
                failure = {SKIPPED: item_name(input_) if isinstance(input_, Mapping) else "item", "reason": _reason(e)}
        self.skipped += 1
        logger.warning(
            "skipping %s: %s (%d item(s) skipped by this process)", failure[SKIPPED], failure["reason"], self.skipped
        )
        return failure


def collate_loaded(batch: Sequence[Any]) -> Any:
    """MONAI's ``list_data_collate`` over the items that loaded (skip markers of the ``"skip"`` policy, see
    :class:`SkipFailuresCompose`, and None are left out). Raises ``RuntimeError`` when no item of the batch loaded."""
    loaded = [item for item in batch if item is not None and not is_skipped(item)]
    if not loaded:
        raise RuntimeError(f"none of the {len(batch)} items of a batch could be loaded; see the warnings above")
    return list_data_collate(loaded)


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
