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
"""Downstream datasets in their public formats -> decathlon-style datalists (classification, grounding, segmentation).

Readers for NIH ChestX-ray14 (``Data_Entry_2017*.csv`` and ``BBox_List_2017.csv``), RSNA Pneumonia
(``stage_2_train_labels.csv`` with DICOM images), SIIM-ACR Pneumothorax (the train RLE CSV with DICOM images) and
COVIDx CXR-4 (its ``train.txt``/``val.txt``/``test.txt`` label files). CSV files may be gzip-compressed. Every
reader returns ``{"classification": [...], "grounding": [...], ...}`` item lists in the contract of
``docs/architecture.md``; :func:`split_by_patient` and the command line (``python -m medslip_monai.data.downstream``)
turn them into datalist files with patient-disjoint splits.

Zero-shot evaluation maps each dataset class to one of the 75 MeDSLIP entities (``CLASS_ENTITIES``, the official
mapping) or, for a class no entity covers (COVID-19), to a description embedded at evaluation time
(``CLASS_DESCRIPTIONS``).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import logging
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from medslip_monai.vocab import PATHOLOGIES

__all__ = [
    "CXR14_CLASSES",
    "CLASS_ENTITIES",
    "CLASS_DESCRIPTIONS",
    "DATASETS",
    "rle_decode",
    "rle_encode",
    "read_cxr14",
    "read_rsna",
    "read_siim",
    "read_covidx",
    "split_by_patient",
    "zero_shot_classes",
]

logger = logging.getLogger(__name__)

CXR14_CLASSES = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)

#: Dataset class -> MeDSLIP pathology entity (the official zero-shot mapping; Fibrosis has no entity of its own there).
CLASS_ENTITIES = {
    "Atelectasis": "atelectasis",
    "Cardiomegaly": "cardiomegaly",
    "Effusion": "effusion",
    "Infiltration": "infiltrate",
    "Mass": "mass",
    "Nodule": "nodule",
    "Pneumonia": "pneumonia",
    "Pneumothorax": "pneumothorax",
    "Consolidation": "consolidation",
    "Edema": "edema",
    "Emphysema": "emphysema",
    "Fibrosis": "tail_abnorm_obs",
    "Pleural_Thickening": "thicken",
    "Hernia": "hernia",
}

#: Classes no entity covers, scored zero-shot from a description (open vocabulary).
CLASS_DESCRIPTIONS = {
    "COVID-19": "COVID-19 pneumonia: patchy ground-glass opacities and consolidation in both lungs, peripheral and "
    "predominantly in the lower zones.",
}

_BBOX_LABELS = {"Infiltrate": "Infiltration"}  # BBox_List_2017 spells one class differently from Data_Entry


def _open_text(path: str | Path) -> io.TextIOBase:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _csv_rows(path: str | Path, required: Sequence[str]) -> Iterable[tuple[int, dict[str, str]]]:
    """``(line number, row)`` of a CSV file, column names stripped of spaces; a missing column raises naming it."""
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        missing = [name for name in required if name not in header]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; found {header}")
        for line, values in enumerate(reader, start=2):
            if values:
                yield line, dict(zip(header, (value.strip() for value in values)))


def _number(path, line: int, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{path}, line {line}: {value!r} is not a number") from None
    if not np.isfinite(number):
        raise ValueError(f"{path}, line {line}: {value!r} is not a finite number")
    return number


def _resolve_images(items: list[dict], policy: str, source) -> list[dict]:
    """Apply the missing-image policy: ``"raise"`` refuses a list with missing images, ``"drop"`` keeps the items
    whose image exists and logs the rest, ``"keep"`` checks nothing (lists built before the images are there)."""
    if policy == "keep":
        return list(items)
    kept = [item for item in items if Path(item["image"]).is_file()]
    missing = len(items) - len(kept)
    if missing:
        examples = [item["image"] for item in items if not Path(item["image"]).is_file()][:3]
        message = f"{source}: {missing} of {len(items)} images not found, e.g. {examples}"
        if policy == "raise":
            raise FileNotFoundError(message + " (missing='drop' keeps the rest)")
        if policy != "drop":
            raise ValueError(f"missing must be 'raise', 'drop' or 'keep', got {policy!r}")
        logger.warning(message + "; dropped")
    return kept


def read_cxr14(
    data_entry: str | Path, image_dir: str | Path, bbox_list: str | Path | None = None, missing: str = "raise"
) -> dict[str, list[dict]]:
    """NIH ChestX-ray14: ``Data_Entry_2017*.csv`` -> classification items ``{"image", "label": [14], "patient"}``
    (classes in ``CXR14_CLASSES`` order; "No Finding" is all zeros) and, from ``BBox_List_2017.csv``, grounding items
    ``{"image", "finding", "boxes": [[x, y, w, h], ...], "patient"}`` (one per image and class, pixel coordinates of
    the 1024 x 1024 images)."""
    image_dir = Path(image_dir)
    classification, patients = [], {}
    for line, row in _csv_rows(data_entry, ("Image Index", "Finding Labels", "Patient ID")):
        names = {name for name in row["Finding Labels"].split("|") if name and name != "No Finding"}
        unknown = names - set(CXR14_CLASSES)
        if unknown:
            raise ValueError(f"{data_entry}, line {line}: unknown finding label(s) {sorted(unknown)}")
        patients[row["Image Index"]] = row["Patient ID"]
        classification.append(
            {
                "image": str(image_dir / row["Image Index"]),
                "label": [int(name in names) for name in CXR14_CLASSES],
                "patient": row["Patient ID"],
            }
        )
    boxes: dict[tuple[str, str], list] = defaultdict(list)
    if bbox_list is not None:
        with _open_text(bbox_list) as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            if len(header) < 3 or header[0].strip() != "Image Index" or header[1].strip() != "Finding Label":
                raise ValueError(f"{bbox_list}: expected 'Image Index, Finding Label, Bbox [x,y,w,h]', got {header}")
            for line, values in enumerate(reader, start=2):
                if not values:
                    continue
                name = _BBOX_LABELS.get(values[1].strip(), values[1].strip())
                if name not in CXR14_CLASSES:
                    raise ValueError(f"{bbox_list}, line {line}: unknown finding label {values[1]!r}")
                box = [_number(bbox_list, line, value) for value in values[2:6]]
                if len(box) != 4 or box[2] <= 0 or box[3] <= 0:
                    raise ValueError(f"{bbox_list}, line {line}: a box needs x, y and a positive width and height")
                boxes[(values[0].strip(), name)].append(box)
    grounding = [
        {"image": str(image_dir / image), "finding": finding, "boxes": found, "patient": patients.get(image, image)}
        for (image, finding), found in boxes.items()
    ]
    return {
        "classification": _resolve_images(classification, missing, data_entry),
        "grounding": _resolve_images(grounding, missing, bbox_list),
    }


def read_rsna(labels_csv: str | Path, image_dir: str | Path, missing: str = "raise") -> dict[str, list[dict]]:
    """RSNA Pneumonia: ``stage_2_train_labels.csv`` (one row per box, ``Target`` 0 with empty box for negatives) ->
    classification items ``{"image": <image_dir>/<patientId>.dcm, "label": [pneumonia]}`` and grounding items for
    the positive images ``{"image", "finding": "Pneumonia", "boxes": [[x, y, w, h], ...]}``."""
    image_dir = Path(image_dir)
    targets: dict[str, int] = {}
    boxes: dict[str, list] = defaultdict(list)
    for line, row in _csv_rows(labels_csv, ("patientId", "x", "y", "width", "height", "Target")):
        if row["Target"] not in ("0", "1"):
            raise ValueError(f"{labels_csv}, line {line}: Target must be 0 or 1, got {row['Target']!r}")
        patient, target = row["patientId"], int(row["Target"])
        if targets.setdefault(patient, target) != target:
            raise ValueError(f"{labels_csv}, line {line}: {patient} is labelled both 0 and 1")
        if target:
            box = [_number(labels_csv, line, row[key]) for key in ("x", "y", "width", "height")]
            if box[2] <= 0 or box[3] <= 0:
                raise ValueError(f"{labels_csv}, line {line}: box width and height must be positive")
            boxes[patient].append(box)
    image = {patient: str(image_dir / f"{patient}.dcm") for patient in targets}
    classification = [{"image": image[p], "label": [t], "patient": p} for p, t in targets.items()]
    grounding = [
        {"image": image[p], "finding": "Pneumonia", "boxes": found, "patient": p} for p, found in boxes.items()
    ]
    return {
        "classification": _resolve_images(classification, missing, labels_csv),
        "grounding": _resolve_images(grounding, missing, labels_csv),
    }


def rle_decode(encoded: str, height: int = 1024, width: int = 1024) -> np.ndarray:
    """SIIM-ACR run-length code -> boolean mask ``[height, width]``.

    The code lists ``(gap, length)`` pairs over the image flattened column by column: each gap counts from the end
    of the previous run. ``"-1"`` (no pneumothorax) gives an empty mask. Raises ``ValueError`` for odd or negative
    numbers and for runs past the end of the image.
    """
    mask = np.zeros(height * width, dtype=bool)
    text = encoded.strip()
    if text == "-1" or not text:
        return mask.reshape(width, height).T
    try:
        numbers = np.asarray(text.split(), dtype=np.int64)
    except ValueError:
        raise ValueError(f"run-length code holds a non-integer: {text[:40]!r}") from None
    if numbers.size % 2 or (numbers < 0).any():
        raise ValueError("run-length code must be pairs of non-negative integers")
    gaps, lengths = numbers[0::2], numbers[1::2]
    starts = np.cumsum(gaps + np.concatenate([[0], lengths[:-1]]))
    if starts.size and starts[-1] + lengths[-1] > mask.size:
        raise ValueError(f"run-length code runs past the end of a {height} x {width} image")
    for start, length in zip(starts, lengths):
        mask[start : start + length] = True
    return mask.reshape(width, height).T  # column-major: the flat index runs down the columns


def rle_encode(mask: np.ndarray) -> str:
    """Boolean mask ``[height, width]`` -> SIIM-ACR run-length code (inverse of :func:`rle_decode`)."""
    flat = np.asarray(mask, dtype=bool).T.reshape(-1)
    if not flat.any():
        return "-1"
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat.astype(np.int8), [0]])))
    starts, ends = edges[0::2], edges[1::2]
    gaps = starts - np.concatenate([[0], ends[:-1]])
    return " ".join(f"{gap} {length}" for gap, length in zip(gaps, ends - starts))


def read_siim(
    rle_csv: str | Path, image_dir: str | Path, mask_dir: str | Path, missing: str = "raise", size: int = 1024
) -> dict[str, list[dict]]:
    """SIIM-ACR Pneumothorax: the train RLE CSV (``ImageId``, ``" EncodedPixels"``; several rows per image are its
    components) and a folder searched recursively for ``<ImageId>.dcm`` -> classification items
    ``{"image", "label": [pneumothorax]}``, segmentation items ``{"image", "label": <mask PNG>}`` (masks decoded into
    ``mask_dir``, 0/255) and grounding items for the positive images ``{"image", "finding": "Pneumothorax",
    "mask"}``."""
    found = {path.stem: path for path in Path(image_dir).rglob("*.dcm")}
    codes: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for line, row in _csv_rows(rle_csv, ("ImageId", "EncodedPixels")):
        codes[row["ImageId"]].append((line, row["EncodedPixels"]))
    items = [{"image": str(found.get(uid, Path(image_dir) / f"{uid}.dcm")), "patient": uid} for uid in codes]
    mask_dir = Path(mask_dir)
    mask_dir.mkdir(parents=True, exist_ok=True)
    classification, segmentation, grounding = [], [], []
    for item in _resolve_images(items, missing, rle_csv):
        mask = np.zeros((size, size), dtype=bool)
        for line, code in codes[item["patient"]]:  # one row per connected component
            try:
                mask |= rle_decode(code, size, size)
            except ValueError as error:
                raise ValueError(f"{rle_csv}, line {line}: {error}") from None
        mask_file = str(mask_dir / f"{item['patient']}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(mask_file)
        classification.append({**item, "label": [int(mask.any())]})
        segmentation.append({**item, "label": mask_file})
        if mask.any():
            grounding.append({**item, "finding": "Pneumothorax", "mask": mask_file})
    return {"classification": classification, "segmentation": segmentation, "grounding": grounding}


_COVIDX_POSITIVE = {"positive": 1, "covid-19": 1, "negative": 0, "normal": 0, "pneumonia": 0}


def read_covidx(label_file: str | Path, image_dir: str | Path, missing: str = "raise") -> dict[str, list[dict]]:
    """COVIDx CXR label file (one image per line: ``patient_id filename class data_source``, space separated; CXR-4
    classes ``positive``/``negative``, older releases ``COVID-19``/``normal``/``pneumonia``) -> classification items
    ``{"image", "label": [COVID-19], "patient"}``."""
    items = []
    with _open_text(label_file) as handle:
        for line, text in enumerate(handle, start=1):
            fields = text.split()
            if not fields:
                continue
            if len(fields) < 3:
                raise ValueError(
                    f"{label_file}, line {line}: expected 'patient_id filename class [source]', got {text.strip()!r}"
                )
            label = _COVIDX_POSITIVE.get(fields[2].lower())
            if label is None:
                raise ValueError(
                    f"{label_file}, line {line}: unknown class {fields[2]!r}; known {sorted(_COVIDX_POSITIVE)}"
                )
            items.append({"image": str(Path(image_dir) / fields[1]), "label": [label], "patient": fields[0]})
    return {"classification": _resolve_images(items, missing, label_file)}


DATASETS = {"cxr14": list(CXR14_CLASSES), "rsna": ["Pneumonia"], "siim": ["Pneumothorax"], "covidx": ["COVID-19"]}


def split_by_patient(
    lists: dict[str, Sequence[dict]], validation: float = 0.1, test: float = 0.2, seed: int = 0
) -> dict[str, dict[str, list[dict]]]:
    """``{task: items}`` -> ``{task: {"training", "validation", "test": items}}`` with one patient-disjoint split
    shared by every task (fractions of patients, fixed seed); an item without ``patient`` is its own patient."""
    patients = sorted({item.get("patient", item["image"]) for items in lists.values() for item in items})
    random.Random(seed).shuffle(patients)
    num_test, num_val = round(test * len(patients)), round(validation * len(patients))
    split_of = dict.fromkeys(patients[:num_test], "test")
    split_of.update(dict.fromkeys(patients[num_test : num_test + num_val], "validation"))
    result = {}
    for task, items in lists.items():
        splits: dict[str, list[dict]] = {"training": [], "validation": [], "test": []}
        for item in items:
            splits[split_of.get(item.get("patient", item["image"]), "training")].append(item)
        result[task] = splits
    return result


def zero_shot_classes(
    classes: Sequence[str], class_entities: dict[str, str], class_descriptions: dict[str, str]
) -> tuple[list[str], dict[str, str], list[int]]:
    """Dataset classes -> ``(entities, new_findings, order)`` for :class:`~medslip_monai.networks.MeDSLIPPredictor`.

    A class mapped in ``class_entities`` is scored by that entity's query, one in ``class_descriptions`` by a new
    query built from the description (``new_findings``: class -> description). The predictor reports entities
    first, then new findings; ``order[k]`` is the predictor output of class ``k``. A class found in neither, or an
    unknown entity, raises ``ValueError``.
    """
    entities, new_findings, slots = [], {}, []
    for name in classes:
        if name in class_entities:
            if class_entities[name] not in PATHOLOGIES:
                raise ValueError(f"class {name!r} maps to {class_entities[name]!r}, which is not a MeDSLIP entity")
            slots.append(("entity", len(entities)))
            entities.append(class_entities[name])
        elif name in class_descriptions:
            slots.append(("description", len(new_findings)))
            new_findings[name] = class_descriptions[name]
        else:
            raise ValueError(f"class {name!r} has neither an entity (class_entities) nor a description")
    order = [k if kind == "entity" else len(entities) + k for kind, k in slots]
    return entities, new_findings, order


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m medslip_monai.data.downstream", description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=sorted(DATASETS))
    parser.add_argument(
        "--labels",
        required=True,
        nargs="+",
        help="cxr14: Data_Entry CSV; rsna: stage_2_train_labels.csv; siim: train RLE CSV; "
        "covidx: train.txt [val.txt test.txt] (then the splits are the files')",
    )
    parser.add_argument("--images", required=True, help="image folder")
    parser.add_argument("--boxes", help="cxr14: BBox_List_2017.csv")
    parser.add_argument("--masks", help="siim: folder for the decoded masks (default <out folder>/masks)")
    parser.add_argument("--out", required=True, help="folder for classification.json, grounding.json, ...")
    parser.add_argument("--validation", type=float, default=0.1)
    parser.add_argument("--test", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--missing",
        choices=("raise", "drop", "keep"),
        default="raise",
        help="images not found: refuse (default), drop the items, or keep them unchecked",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.dataset == "covidx" and len(args.labels) == 3:
        lists = {
            "classification": {
                split: read_covidx(path, args.images, args.missing)["classification"]
                for split, path in zip(("training", "validation", "test"), args.labels)
            }
        }
    else:
        if args.dataset == "cxr14":
            read = read_cxr14(args.labels[0], args.images, args.boxes, args.missing)
        elif args.dataset == "rsna":
            read = read_rsna(args.labels[0], args.images, args.missing)
        elif args.dataset == "siim":
            read = read_siim(args.labels[0], args.images, args.masks or out / "masks", args.missing)
        else:
            read = read_covidx(args.labels[0], args.images, args.missing)
        lists = split_by_patient(read, args.validation, args.test, args.seed)
    for task, splits in lists.items():
        (out / f"{task}.json").write_text(json.dumps({"classes": DATASETS[args.dataset], **splits}, indent=1))
    print(json.dumps({task: {split: len(items) for split, items in splits.items()} for task, splits in lists.items()}))


if __name__ == "__main__":
    main()
