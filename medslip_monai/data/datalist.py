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
import os
from pathlib import Path
from typing import Callable, Sequence

from monai.data import CacheDataset, Dataset, PersistentDataset
from monai.utils import look_up_option

__all__ = ["load_datalist", "build_dataset", "DEFAULT_PATH_KEYS", "DATASET_TYPES"]

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


def build_dataset(
    data: Sequence[dict],
    transform: Callable,
    dataset_type: str = "CacheDataset",
    cache_dir: str | os.PathLike | None = None,
    cache_rate: float = 1.0,
    num_workers: int | None = 1,
) -> Dataset:
    """One of MONAI's ``Dataset``, ``CacheDataset`` (deterministic transforms cached in memory) or
    ``PersistentDataset`` (cached on disk in ``cache_dir``), chosen by name so configs can switch with one value.
    """
    dataset_type = look_up_option(dataset_type, DATASET_TYPES)
    if dataset_type == "CacheDataset":
        return CacheDataset(data, transform, cache_rate=cache_rate, num_workers=num_workers, progress=False)
    if dataset_type == "PersistentDataset":
        if cache_dir is None:
            raise ValueError("PersistentDataset needs a cache_dir")
        return PersistentDataset(data, transform, cache_dir=cache_dir)
    return Dataset(data, transform)
