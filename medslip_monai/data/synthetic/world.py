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
"""The world on disk: images, label and box maps, masks, datalists and ``world.json``, generated in parallel."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from medslip_monai.cli import flag
from medslip_monai.data.synthetic.cases import render_case
from medslip_monai.data.synthetic.findings import FINDINGS

__all__ = ["WORLD_VERSION", "generate_world", "ensure_world", "prepare_world"]

#: Bumped whenever the same parameters would give other files.
WORLD_VERSION = 4
_SPLITS = ("training", "validation", "test")


def _write_case(job: tuple[str, int, int, int, str]) -> dict:
    """Render one case and write its files; returns its datalist item (paths relative to the world's folder)."""
    split, seed, index, size, out = job
    case = render_case(seed, index, size)
    name = f"{split}_{index:05d}"
    root = Path(out)
    Image.fromarray(case["image"]).save(root / "images" / f"{name}.png")
    packed = np.zeros((size, size), np.uint8)
    boxed = np.zeros((size, size), np.uint8)
    mask_files = {}
    for bit, finding in enumerate(FINDINGS):
        if finding in case["masks"]:
            packed |= case["masks"][finding].astype(np.uint8) << bit
            for x, y, w, h in case["boxes"][finding]:
                boxed[y : y + h, x : x + w] |= np.uint8(1 << bit)
            mask_files[finding] = f"masks/{name}_{finding}.png"
            Image.fromarray(case["masks"][finding].astype(np.uint8) * 255).save(root / mask_files[finding])
    Image.fromarray(packed).save(root / "labelmaps" / f"{name}.png")
    Image.fromarray(boxed).save(root / "boxmaps" / f"{name}.png")
    return {
        "image": f"images/{name}.png",
        "report": case["report"],
        "triplets": case["triplets"],
        "label": case["labels"],
        "labelmap": f"labelmaps/{name}.png",
        "boxmap": f"boxmaps/{name}.png",
        "masks": mask_files,
        "boxes": case["boxes"],
        "mentions": case["mentions"],
    }


def _datalists(cases: dict[str, list[dict]]) -> dict[str, dict]:
    """The pretrain, classification, grounding and segmentation datalists of the cases of each split."""
    pretrain, classification, grounding, segmentation = {}, {}, {}, {}
    for split, items in cases.items():
        pretrain[split] = [
            {k: c[k] for k in ("image", "report", "triplets", "label", "labelmap", "boxmap")} for c in items
        ]
        classification[split] = [{"image": c["image"], "label": c["label"]} for c in items]
        grounding[split] = [
            {"image": c["image"], "finding": f, "boxes": c["boxes"][f], "mask": c["masks"][f]}
            for c in items
            for f in FINDINGS
            if f in c["masks"]
        ]
        segmentation[split] = [{"image": c["image"], "label": c["labelmap"]} for c in items]
    return {
        "pretrain": pretrain,
        "classification": classification,
        "grounding": grounding,
        "segmentation": segmentation,
    }


def generate_world(
    out: str | os.PathLike,
    num: int = 2000,
    seed: int = 0,
    num_val: int | None = None,
    num_test: int | None = None,
    size: int = 256,
    workers: int | None = None,
) -> dict:
    """Generate a synthetic world into ``out`` and return its description (also written to ``world.json``).

    The training split is drawn with ``seed``; validation and test with ``seed + 1`` and ``seed + 2``, so held-out
    images come from other random streams. Files: ``images/*.png``, ``labelmaps/*.png`` and ``boxmaps/*.png``
    (bit ``k`` = finding ``k``: its mask, or its filled boxes), ``masks/<image>_<finding>.png``, ``truth.json``
    and the datalists ``pretrain.json``, ``classification.json``, ``grounding.json`` and ``segmentation.json``
    (paths relative to ``out``).
    """
    num_val = max(50, num // 5) if num_val is None else num_val
    num_test = num_val if num_test is None else num_test
    root = Path(out)
    for folder in ("images", "labelmaps", "boxmaps", "masks"):
        shutil.rmtree(root / folder, ignore_errors=True)
        (root / folder).mkdir(parents=True)
    jobs = {
        split: [(split, seed + offset, i, size, str(root)) for i in range(count)]
        for offset, (split, count) in enumerate(zip(_SPLITS, (num, num_val, num_test)))
    }
    start = time.perf_counter()
    workers = workers or os.cpu_count() or 1
    with ProcessPoolExecutor(workers) if workers > 1 else _Serial() as pool:
        cases = {split: list(pool.map(_write_case, split_jobs, chunksize=16)) for split, split_jobs in jobs.items()}
    seconds = time.perf_counter() - start
    for name, datalist in _datalists(cases).items():
        (root / f"{name}.json").write_text(json.dumps(datalist, indent=1))
    truth = {
        c["image"]: {k: c[k] for k in ("label", "mentions", "boxes", "triplets")} for v in cases.values() for c in v
    }
    (root / "truth.json").write_text(json.dumps(truth))
    world = {
        "generator": "medslip_monai.data.synthetic",
        "version": WORLD_VERSION,
        "parameters": {"num": num, "num_val": num_val, "num_test": num_test, "seed": seed, "size": size},
        "seeds": {split: seed + offset for offset, split in enumerate(_SPLITS)},
        "findings": list(FINDINGS),
        "counts": {split: len(items) for split, items in cases.items()},
        "prevalence": {
            split: {f: float(np.mean([c["label"][k] for c in items])) for k, f in enumerate(FINDINGS)}
            for split, items in cases.items()
        },
        "images_per_second": round(sum(len(v) for v in cases.values()) / seconds, 1),
        "note": "Synthetic test bed; not a model of clinical reality.",
    }
    (root / "world.json").write_text(json.dumps(world, indent=1))
    return world


class _Serial:
    """Stand-in for a process pool when one worker is asked for."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def map(fn, items, chunksize=1):
        return map(fn, items)


def ensure_world(
    out: str | os.PathLike,
    num: int = 2000,
    seed: int = 0,
    num_val: int | None = None,
    num_test: int | None = None,
    size: int = 256,
    workers: int | None = None,
) -> str:
    """Generate the world in ``out`` unless one with the same parameters is already there; returns ``out``.

    A folder that exists, is not empty and holds no ``world.json`` is refused rather than overwritten.
    """
    root = Path(out)
    wanted = {"num": num, "num_val": max(50, num // 5) if num_val is None else num_val, "seed": seed, "size": size}
    wanted["num_test"] = wanted["num_val"] if num_test is None else num_test
    world_file = root / "world.json"
    if world_file.is_file():
        world = json.loads(world_file.read_text())
        if world.get("version") == WORLD_VERSION and world.get("parameters") == wanted:
            return str(root)
    elif root.is_dir() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty and holds no synthetic world.json; refusing to write into it")
    generate_world(root, num, seed, wanted["num_val"], wanted["num_test"], size, workers)
    return str(root)


def prepare_world(out: str | os.PathLike, settings: Mapping) -> str | None:
    """The bundle's world step: :func:`ensure_world` with a config's ``synthetic`` section (``num``, ``seed``, ...),
    skipped when its ``generate`` is false (training on other data). Under ``torchrun`` only global rank 0 (the
    ``RANK`` environment variable) writes; the other ranks wait at the process-group barrier that follows in
    ``multi_gpu_train.json``. Returns ``out``, or None when skipped.
    """
    parameters = dict(settings)
    if not flag(parameters.pop("generate", True), "synthetic#generate"):
        return None
    if int(os.environ.get("RANK", "0")) == 0:
        ensure_world(out, **parameters)
    return str(out)
