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

Malformed rows are skipped by default: each is logged with its file, line and reason and counted in a
:class:`Problems` record (an item built from several rows is left out whole when one of them is bad), and a reader
fails only when no usable item remains; ``strict=True`` (``--strict``) raises at the first problem instead. Ids
taken from the files become file names only when they are plain names (no path separator, ``..``, control
character or drive), so every image looked up stays inside the image folder and every mask written stays inside
the mask folder.

Zero-shot evaluation maps each dataset class to one of the 75 MeDSLIP entities (``CLASS_ENTITIES``, the official
mapping) or, for a class no entity covers (COVID-19), to a description embedded at evaluation time
(``CLASS_DESCRIPTIONS``).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import io
import json
import logging
import os
import random
import re
import sys
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from medslip_monai.errors import run_command
from medslip_monai.vocab import PATHOLOGIES

__all__ = [
    "CXR14_CLASSES",
    "CLASS_ENTITIES",
    "CLASS_DESCRIPTIONS",
    "DATASETS",
    "Problems",
    "main",
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
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that are not UTF-8, kept by errors="surrogateescape"
#: Path separators (either system's), control characters and a leading drive (``C:``).
_NOT_IN_NAMES = re.compile(r"[\x00-\x1f\x7f/\\]|^[A-Za-z]:")
#: Errors of a damaged compressed stream (bad gzip header or CRC, truncated or corrupt deflate data).
_STREAM_ERRORS = (OSError, EOFError, zlib.error)


class Problems:
    """What was wrong in the input files: each problem is logged with its file, line and reason and counted by kind;
    with ``strict=True`` the first one raises ``ValueError`` instead.

    Args:
        strict: raise at the first problem. Defaults to False (record, log and go on).
    """

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.kinds: Counter[str] = Counter()
        self.messages: list[str] = []

    def add(self, source, line: int | None, kind: str, reason: str) -> None:
        """Record (or, when strict, raise) one problem of ``kind`` at ``line`` of ``source``."""
        message = f"{source}, line {line}: {reason}" if line is not None else f"{source}: {reason}"
        if self.strict:
            raise ValueError(message)
        self.kinds[kind] += 1
        self.messages.append(message)
        logger.warning("skipping %s", message)

    def tally(self, kind: str, count: int) -> None:
        """Count ``count`` problems of ``kind`` that the caller reported itself (e.g. images not found)."""
        if count:
            self.kinds[kind] += count

    def __len__(self) -> int:
        return sum(self.kinds.values())

    def summary(self) -> str:
        """``"<n> problem(s): <count> <kind>, ..."`` (most frequent first), or ``"no problems"``."""
        if not self.kinds:
            return "no problems"
        return f"{len(self)} problem(s): " + ", ".join(f"{count} {kind}" for kind, count in self.kinds.most_common())


def _open_text(path: str | Path) -> io.TextIOBase:
    """A text handle on ``path`` (gzip when it ends in ``.gz``); bytes that are not UTF-8 survive as surrogates, so
    the reader can name the line, and a leading byte-order mark is dropped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    options = {"encoding": "utf-8-sig", "errors": "surrogateescape", "newline": ""}
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), **options)
    return open(path, **options)


#: A label-file line longer than this is a problem (real rows are under 300 characters; the SIIM RLE column of a
#: 1024 x 1024 mask stays under 100,000).
MAX_LINE_CHARS = 1 << 20
#: A label file (after decompression) longer than this stops with a problem: the largest, CXR14's, is 7.6 MB.
MAX_TABLE_CHARS = 1 << 31


def _lines(path: str | Path, problems: Problems) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of a text file; a damaged compressed stream, a line over ``MAX_LINE_CHARS`` or a file
    over ``MAX_TABLE_CHARS`` (a decompression bomb) ends or skips lines with a problem, never read whole."""
    with _open_text(path) as handle:
        number, total = 0, 0
        while True:
            try:
                text = handle.readline(MAX_LINE_CHARS + 1)
                total += len(text)
                if len(text) > MAX_LINE_CHARS and not text.endswith("\n"):
                    while text and not text.endswith("\n") and total <= MAX_TABLE_CHARS:  # the rest of the line
                        text = handle.readline(MAX_LINE_CHARS + 1)
                        total += len(text)
                    number += 1
                    problems.add(path, number, "line too long", f"a line of more than {MAX_LINE_CHARS} characters")
                    text = "\n" if text else ""
                    if not text:
                        return
                    continue
            except _STREAM_ERRORS as error:
                problems.add(path, number + 1, "damaged file", f"the file cannot be read from here on ({error})")
                return
            if total > MAX_TABLE_CHARS:
                problems.add(
                    path, number + 1, "file too large", f"more than {MAX_TABLE_CHARS} characters; rest skipped"
                )
                return
            if not text:
                return
            number += 1
            if _UNDECODABLE.search(text):
                problems.add(path, number, "not UTF-8", f"bytes that are not UTF-8 text: {text.strip()[:80]!r}")
                continue
            yield number, text


def _csv_lines(path: str | Path, problems: Problems) -> Iterator[tuple[int, list[str]]]:
    """``(line number, values)`` of the non-blank lines of a CSV file, each line parsed on its own (none of these
    files has quoted line breaks, so a stray quote damages one row, not the rest of the file)."""
    for number, text in _lines(path, problems):
        try:
            values = next(csv.reader([text]), [])
        except csv.Error as error:
            problems.add(path, number, "unreadable row", f"not a CSV row ({error})")
            continue
        values = [value.strip() for value in values]
        if any(values):
            yield number, values


def _csv_rows(path: str | Path, required: Sequence[str], problems: Problems) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` of a CSV file, column names stripped of spaces; a missing column raises naming it, a
    row too short to hold the required columns is a problem."""
    with contextlib.closing(_csv_lines(path, problems)) as lines:
        _, header = next(lines, (0, []))
        if not header:
            raise ValueError(f"{path}: no header line; expected the columns {list(required)}")
        missing = [name for name in required if name not in header]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; found {header}")
        needed = max(header.index(name) for name in required) + 1
        for number, values in lines:
            if len(values) < needed:
                reason = f"{len(values)} value(s), the columns {list(required)} need {needed}"
                problems.add(path, number, "too few columns", reason)
                continue
            yield number, dict(zip(header, values))


def _box(values: Sequence[str]) -> list[float]:
    """``[x, y, w, h]`` from four texts; ``ValueError`` (the reason only) for a missing or non-finite number or a
    size that is not positive."""
    box = []
    for value in values:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        if not np.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number")
        box.append(number)
    if len(box) != 4 or box[2] <= 0 or box[3] <= 0:
        raise ValueError("a box needs x, y and a positive width and height")
    return box


def _unsafe_name(name: str) -> str | None:
    """Why ``name`` cannot be used as a file name inside a folder, or None when it is a plain name."""
    if name in ("", ".", ".."):
        return f"{name!r} is not a file name"
    if _NOT_IN_NAMES.search(name):
        return f"{name!r} is not a plain file name (it holds a path separator, a drive or a control character)"
    return None


def _inside(folder: Path, name: str, suffix: str = "") -> Path:
    """``folder / (name + suffix)`` for a plain ``name``; ``ValueError`` for a name that would lead elsewhere."""
    reason = _unsafe_name(name)
    if reason is not None:
        raise ValueError(reason)
    path = folder / f"{name}{suffix}"
    if path.name != f"{name}{suffix}" or path.name in (".", ".."):  # one component below folder, nothing else
        raise ValueError(f"{name!r} leads outside {folder}")
    return path


def _image(folder: Path, name: str, suffix: str, source, line: int, what: str, problems: Problems) -> str | None:
    """The image path of the id ``name`` inside ``folder``, or None with a problem when the id is not a plain name."""
    try:
        return str(_inside(folder, name, suffix))
    except ValueError as error:
        problems.add(source, line, "unsafe name", f"{what} {error}")
        return None


def _write_mask(folder: Path, name: str, mask: np.ndarray) -> str:
    """Write ``mask`` (0/255 PNG) as ``<folder>/<name>.png`` after checking that the resolved path stays in
    ``folder``; the final file is opened without following a link."""
    path = _inside(folder, name, ".png")
    real = path.resolve()
    if real.parent != folder.resolve():
        raise ValueError(f"{path}: resolves to {real}, outside the mask folder {folder}; refusing to write it")
    try:
        descriptor = os.open(
            path,
            os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0),
            0o644,
        )
        with os.fdopen(descriptor, "wb") as handle:
            Image.fromarray(mask.astype(np.uint8) * 255).save(handle, format="PNG")
    except OSError as error:
        raise ValueError(f"{path}: cannot write the mask ({error})") from None
    return str(path)


def _resolve_images(items: list[dict], policy: str, source, problems: Problems | None = None) -> list[dict]:
    """Apply the missing-image policy: ``"raise"`` refuses a list with missing images, ``"drop"`` keeps the items
    whose image exists and logs (and counts in ``problems``) the rest, ``"keep"`` checks nothing (lists built before
    the images are there)."""
    if policy not in ("raise", "drop", "keep"):
        raise ValueError(f"missing must be 'raise', 'drop' or 'keep', got {policy!r}")
    if policy == "keep":
        return list(items)
    kept = [item for item in items if Path(item["image"]).is_file()]
    missing = len(items) - len(kept)
    if missing:
        examples = [item["image"] for item in items if not Path(item["image"]).is_file()][:3]
        message = f"{source}: {missing} of {len(items)} images not found, e.g. {examples}"
        if policy == "raise":
            raise FileNotFoundError(message + " (missing='drop' keeps the rest)")
        logger.warning(message + "; dropped")
        if problems is not None:
            problems.tally("image not found", missing)
    return kept


def _usable(lists: dict[str, list[dict]], source, problems: Problems) -> dict[str, list[dict]]:
    """``lists`` when they hold an item; otherwise ``ValueError`` naming ``source`` and what was wrong."""
    if not any(lists.values()):
        raise ValueError(f"{source}: no usable item ({problems.summary()}; the warnings above name each one)")
    return lists


def read_cxr14(
    data_entry: str | Path,
    image_dir: str | Path,
    bbox_list: str | Path | None = None,
    missing: str = "raise",
    strict: bool = False,
    problems: Problems | None = None,
) -> dict[str, list[dict]]:
    """NIH ChestX-ray14: ``Data_Entry_2017*.csv`` -> classification items ``{"image", "label": [14], "patient"}``
    (classes in ``CXR14_CLASSES`` order; "No Finding" is all zeros) and, from ``BBox_List_2017.csv``, grounding items
    ``{"image", "finding", "boxes": [[x, y, w, h], ...], "patient"}`` (one per image and class, pixel coordinates of
    the 1024 x 1024 images).

    Malformed rows are recorded in ``problems`` (a new :class:`Problems` with ``strict`` when None) and skipped; an
    (image, class) with a bad box is left out of grounding whole. ``ValueError`` when no item is usable.
    """
    problems = Problems(strict) if problems is None else problems
    image_dir = Path(image_dir)
    classification, patients = [], {}
    for line, row in _csv_rows(data_entry, ("Image Index", "Finding Labels", "Patient ID"), problems):
        names = {name for name in row["Finding Labels"].split("|") if name and name != "No Finding"}
        unknown = names - set(CXR14_CLASSES)
        if unknown:
            problems.add(data_entry, line, "unknown label", f"unknown finding label(s) {sorted(unknown)}")
            continue
        if not row["Patient ID"]:
            problems.add(data_entry, line, "no patient", "empty Patient ID")
            continue
        if row["Image Index"] in patients:
            problems.add(data_entry, line, "duplicate image", f"{row['Image Index']!r} is listed twice; kept the first")
            continue
        image = _image(image_dir, row["Image Index"], "", data_entry, line, "Image Index", problems)
        if image is None:
            continue
        patients[row["Image Index"]] = row["Patient ID"]
        classification.append(
            {"image": image, "label": [int(name in names) for name in CXR14_CLASSES], "patient": row["Patient ID"]}
        )
    boxes: dict[tuple[str, str], list] = defaultdict(list)
    broken: set[tuple[str, str]] = set()
    if bbox_list is not None:
        with contextlib.closing(_csv_lines(bbox_list, problems)) as lines:
            _, header = next(lines, (0, []))
            if len(header) < 3 or header[0] != "Image Index" or header[1] != "Finding Label":
                raise ValueError(f"{bbox_list}: expected 'Image Index, Finding Label, Bbox [x,y,w,h]', got {header}")
            rows = list(lines)
        for line, values in rows:
            if len(values) < 2:
                problems.add(bbox_list, line, "too few columns", "expected image, finding label and a box")
                continue
            name = _BBOX_LABELS.get(values[1], values[1])
            if name not in CXR14_CLASSES:
                problems.add(bbox_list, line, "unknown label", f"unknown finding label {values[1]!r}")
                continue
            if _image(image_dir, values[0], "", bbox_list, line, "Image Index", problems) is None:
                continue
            try:
                boxes[(values[0], name)].append(_box(values[2:6]))
            except ValueError as error:
                problems.add(bbox_list, line, "bad box", str(error))
                broken.add((values[0], name))
    grounding = [
        {"image": str(image_dir / image), "finding": finding, "boxes": found, "patient": patients.get(image, image)}
        for (image, finding), found in boxes.items()
        if (image, finding) not in broken
    ]
    return _usable(
        {
            "classification": _resolve_images(classification, missing, data_entry, problems),
            "grounding": _resolve_images(grounding, missing, bbox_list, problems),
        },
        data_entry,
        problems,
    )


def read_rsna(
    labels_csv: str | Path,
    image_dir: str | Path,
    missing: str = "raise",
    strict: bool = False,
    problems: Problems | None = None,
) -> dict[str, list[dict]]:
    """RSNA Pneumonia: ``stage_2_train_labels.csv`` (one row per box, ``Target`` 0 with empty box for negatives) ->
    classification items ``{"image": <image_dir>/<patientId>.dcm, "label": [pneumonia]}`` and grounding items for
    the positive images ``{"image", "finding": "Pneumonia", "boxes": [[x, y, w, h], ...]}``.

    Malformed rows are recorded in ``problems`` (a new :class:`Problems` with ``strict`` when None); a patient with
    a bad row (bad target or box, labelled both 0 and 1) is left out whole. ``ValueError`` when no item is usable.
    """
    problems = Problems(strict) if problems is None else problems
    image_dir = Path(image_dir)
    targets: dict[str, int] = {}
    boxes: dict[str, list] = defaultdict(list)
    image: dict[str, str] = {}
    broken: set[str] = set()
    for line, row in _csv_rows(labels_csv, ("patientId", "x", "y", "width", "height", "Target"), problems):
        patient = row["patientId"]
        if patient not in image:
            path = _image(image_dir, patient, ".dcm", labels_csv, line, "patientId", problems)
            if path is None:
                continue
            image[patient] = path
        if row["Target"] not in ("0", "1"):
            problems.add(labels_csv, line, "bad label", f"Target must be 0 or 1, got {row['Target']!r}")
            broken.add(patient)
            continue
        target = int(row["Target"])
        if targets.setdefault(patient, target) != target:
            problems.add(labels_csv, line, "conflicting labels", f"{patient} is labelled both 0 and 1")
            broken.add(patient)
            continue
        if target:
            try:
                boxes[patient].append(_box([row[key] for key in ("x", "y", "width", "height")]))
            except ValueError as error:
                problems.add(labels_csv, line, "bad box", str(error))
                broken.add(patient)
    classification = [{"image": image[p], "label": [t], "patient": p} for p, t in targets.items() if p not in broken]
    grounding = [
        {"image": image[p], "finding": "Pneumonia", "boxes": found, "patient": p}
        for p, found in boxes.items()
        if p not in broken
    ]
    return _usable(
        {
            "classification": _resolve_images(classification, missing, labels_csv, problems),
            "grounding": _resolve_images(grounding, missing, labels_csv, problems),
        },
        labels_csv,
        problems,
    )


def rle_decode(encoded: str, height: int = 1024, width: int = 1024) -> np.ndarray:
    """SIIM-ACR run-length code -> boolean mask ``[height, width]``.

    The code lists ``(gap, length)`` pairs over the image flattened column by column: each gap counts from the end
    of the previous run. ``"-1"`` (no pneumothorax) gives an empty mask. Raises ``ValueError`` for non-integers, odd
    or negative numbers and for runs past the end of the image.
    """
    mask = np.zeros(height * width, dtype=bool)
    text = encoded.strip()
    if text == "-1" or not text:
        return mask.reshape(width, height).T
    try:
        numbers = np.asarray(text.split(), dtype=np.int64)
    except (ValueError, OverflowError):
        raise ValueError(f"run-length code holds a non-integer or a huge number: {text[:40]!r}") from None
    if numbers.size % 2 or (numbers < 0).any():
        raise ValueError("run-length code must be pairs of non-negative integers")
    if (numbers > mask.size).any():  # also keeps the sums below from overflowing
        raise ValueError(f"run-length code runs past the end of a {height} x {width} image")
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
    rle_csv: str | Path,
    image_dir: str | Path,
    mask_dir: str | Path,
    missing: str = "raise",
    size: int = 1024,
    strict: bool = False,
    problems: Problems | None = None,
) -> dict[str, list[dict]]:
    """SIIM-ACR Pneumothorax: the train RLE CSV (``ImageId``, ``" EncodedPixels"``; several rows per image are its
    components) and a folder searched recursively for ``<ImageId>.dcm`` -> classification items
    ``{"image", "label": [pneumothorax]}``, segmentation items ``{"image", "label": <mask PNG>}`` (masks decoded into
    ``mask_dir``, 0/255) and grounding items for the positive images ``{"image", "finding": "Pneumothorax",
    "mask"}``.

    An ``ImageId`` that is not a plain file name is a problem (never a path: masks are written only inside
    ``mask_dir``); an image with a bad component code is left out whole. Problems go to ``problems`` (a new
    :class:`Problems` with ``strict`` when None). ``ValueError`` when no item is usable.
    """
    problems = Problems(strict) if problems is None else problems
    image_dir, mask_dir = Path(image_dir), Path(mask_dir)
    found = {path.stem: path for path in image_dir.rglob("*.dcm")}
    codes: dict[str, list[tuple[int, str]]] = defaultdict(list)
    items = []
    for line, row in _csv_rows(rle_csv, ("ImageId", "EncodedPixels"), problems):
        uid = row["ImageId"]
        if uid not in codes:
            image = _image(image_dir, uid, ".dcm", rle_csv, line, "ImageId", problems)
            if image is None:
                continue
            items.append({"image": str(found.get(uid, image)), "patient": uid})
        codes[uid].append((line, row["EncodedPixels"]))
    mask_dir.mkdir(parents=True, exist_ok=True)
    classification, segmentation, grounding = [], [], []
    for item in _resolve_images(items, missing, rle_csv, problems):
        mask = np.zeros((size, size), dtype=bool)
        for line, code in codes[item["patient"]]:  # one row per connected component
            try:
                mask |= rle_decode(code, size, size)
            except ValueError as error:
                problems.add(rle_csv, line, "bad run-length code", f"{error}; image {item['patient']} left out")
                break
        else:
            mask_file = _write_mask(mask_dir, item["patient"], mask)
            classification.append({**item, "label": [int(mask.any())]})
            segmentation.append({**item, "label": mask_file})
            if mask.any():
                grounding.append({**item, "finding": "Pneumothorax", "mask": mask_file})
    return _usable(
        {"classification": classification, "segmentation": segmentation, "grounding": grounding}, rle_csv, problems
    )


_COVIDX_POSITIVE = {"positive": 1, "covid-19": 1, "negative": 0, "normal": 0, "pneumonia": 0}


def read_covidx(
    label_file: str | Path,
    image_dir: str | Path,
    missing: str = "raise",
    strict: bool = False,
    problems: Problems | None = None,
) -> dict[str, list[dict]]:
    """COVIDx CXR label file (one image per line: ``patient_id filename class data_source``, space separated; CXR-4
    classes ``positive``/``negative``, older releases ``COVID-19``/``normal``/``pneumonia``) -> classification items
    ``{"image", "label": [COVID-19], "patient"}``.

    Malformed lines are recorded in ``problems`` (a new :class:`Problems` with ``strict`` when None) and skipped;
    ``ValueError`` when no item is usable.
    """
    problems = Problems(strict) if problems is None else problems
    image_dir = Path(image_dir)
    items = []
    for line, text in _lines(label_file, problems):
        fields = text.split()
        if not fields:
            continue
        if len(fields) < 3:
            problems.add(
                label_file,
                line,
                "too few columns",
                f"expected 'patient_id filename class [source]', got {text.strip()[:80]!r}",
            )
            continue
        label = _COVIDX_POSITIVE.get(fields[2].lower())
        if label is None:
            problems.add(
                label_file, line, "unknown label", f"unknown class {fields[2]!r}; known {sorted(_COVIDX_POSITIVE)}"
            )
            continue
        image = _image(image_dir, fields[1], "", label_file, line, "filename", problems)
        if image is not None:
            items.append({"image": image, "label": [label], "patient": fields[0]})
    return _usable({"classification": _resolve_images(items, missing, label_file, problems)}, label_file, problems)


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


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
    """The command line: read a dataset's files, write its datalists into ``--out``, print the item counts (JSON,
    standard output) and a summary of the problems skipped (standard error). Returns the counts."""
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
    parser.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first malformed row (default: log it, skip it, go on and summarise at the end)",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    problems = Problems(args.strict)
    if args.dataset == "covidx" and len(args.labels) == 3:
        lists = {
            "classification": {
                split: read_covidx(path, args.images, args.missing, problems=problems)["classification"]
                for split, path in zip(("training", "validation", "test"), args.labels)
            }
        }
    else:
        if args.dataset == "cxr14":
            read = read_cxr14(args.labels[0], args.images, args.boxes, args.missing, problems=problems)
        elif args.dataset == "rsna":
            read = read_rsna(args.labels[0], args.images, args.missing, problems=problems)
        elif args.dataset == "siim":
            read = read_siim(args.labels[0], args.images, args.masks or out / "masks", args.missing, problems=problems)
        else:
            read = read_covidx(args.labels[0], args.images, args.missing, problems=problems)
        lists = split_by_patient(read, args.validation, args.test, args.seed)
    for task, splits in lists.items():
        (out / f"{task}.json").write_text(json.dumps({"classes": DATASETS[args.dataset], **splits}, indent=1))
    counts = {task: {split: len(items) for split, items in splits.items()} for task, splits in lists.items()}
    print(json.dumps(counts))
    print(f"{args.dataset}: wrote {', '.join(sorted(lists))} to {out}; {problems.summary()}", file=sys.stderr)
    return counts


if __name__ == "__main__":
    logging.basicConfig(format="%(levelname)s: %(message)s")
    run_command(main)
