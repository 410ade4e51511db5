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
"""Readers of report corpora (MIMIC-CXR(-JPG) trees, IU/OpenI XML, image+report CSV) and the pre-training
datalist builder.

Readers yield ``Study`` records (images, report text, patient, official split if any) or ``Problem`` records
(file and reason) for every entry that cannot be used; nothing is dropped silently.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import os
import tarfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from medslip_monai.reports.extract import ReportExtractor

__all__ = [
    "Study",
    "Problem",
    "read_csv",
    "read_iu",
    "IUReport",
    "parse_iu_xml",
    "read_mimic",
    "build_pretraining_datalist",
    "SPLITS",
]

logger = logging.getLogger(__name__)

SPLITS = ("training", "validation", "test")
_SPLIT_NAMES = {
    "train": "training",
    "training": "training",
    "validate": "validation",
    "validation": "validation",
    "val": "validation",
    "valid": "validation",
    "test": "test",
    "testing": "test",
}
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".dcm", ".dicom", ".nii", ".nii.gz")


@dataclass
class Study:
    """One report and the images it describes."""

    source: str  # where the report came from (file, or file:row), for messages
    images: list[str]
    report: str = ""
    patient: str = ""  # groups studies for the random split
    split: str | None = None  # official split, if the corpus has one
    triplets: list | None = None  # given triplets (e.g. from RadGraph) instead of extraction
    extra: dict = field(default_factory=dict)


@dataclass
class Problem:
    """An entry that could not be used, with the reason."""

    source: str
    reason: str


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _split_name(value: str | None, source: str) -> str | None:
    if value is None or str(value).strip() == "":
        return None
    name = _SPLIT_NAMES.get(str(value).strip().lower())
    if name is None:
        raise ValueError(f"{source}: unknown split {value!r} (expected one of {sorted(_SPLIT_NAMES)})")
    return name


# --------------------------------------------------------------------------------------------------------- CSV
def read_csv(
    path: str | os.PathLike,
    image_column: str = "image",
    report_column: str = "report",
    split_column: str | None = "split",
    patient_column: str | None = None,
    image_root: str | os.PathLike | None = None,
) -> Iterator[Study | Problem]:
    """Rows of ``image,report[,split][,patient]``; relative image paths start at ``image_root`` (default: the
    CSV's folder). Several images of one report may be joined with ``;``."""
    path = Path(path)
    root = Path(image_root) if image_root is not None else path.parent
    try:
        handle = _open_text(path)
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError) as e:
        yield Problem(str(path), f"cannot read CSV ({e})")
        return
    for column in (image_column, report_column):
        if column not in columns:
            yield Problem(str(path), f"no column {column!r} (columns: {columns})")
            return
    with handle:
        try:
            for number, row in enumerate(reader, start=2):
                source = f"{path}:{number}"
                images = [p.strip() for p in (row.get(image_column) or "").split(";") if p.strip()]
                if not images:
                    yield Problem(source, f"empty {image_column!r}")
                    continue
                try:
                    split = _split_name(row.get(split_column) if split_column else None, source)
                except ValueError as e:
                    yield Problem(source, str(e))
                    continue
                images = [str(root / p) if not os.path.isabs(p) else p for p in images]
                patient = (row.get(patient_column) or "") if patient_column else ""
                yield Study(source, images, row.get(report_column) or "", patient or images[0], split)
        except (csv.Error, UnicodeDecodeError) as e:
            yield Problem(f"{path}:{reader.line_num}", f"malformed CSV ({e})")


# ----------------------------------------------------------------------------------------------------- IU/OpenI
def _iu_documents(reports: Path) -> Iterator[tuple[str, bytes | None, str | None]]:
    """(name, XML bytes or None, error) from a folder of XML files or a .tgz/.tar of them."""
    if reports.is_dir():
        for file in sorted(reports.rglob("*.xml")):
            try:
                yield str(file), file.read_bytes(), None
            except OSError as e:
                yield str(file), None, f"cannot read ({e})"
        return
    try:
        archive = tarfile.open(reports)  # noqa: SIM115 (closed by the with block below, after the error check)
    except (OSError, tarfile.TarError) as e:
        yield str(reports), None, f"cannot open archive ({e})"
        return
    with archive:
        for member in archive:
            if member.isfile() and member.name.endswith(".xml"):
                name = f"{reports}!{member.name}"
                try:
                    yield name, archive.extractfile(member).read(), None
                except (OSError, tarfile.TarError) as e:
                    yield name, None, f"cannot read ({e})"


@dataclass
class IUReport:
    """One IU/OpenI XML report: labelled sections, image ids, MeSH major headings and report id."""

    sections: list[tuple[str, str]]
    images: list[str]
    mesh: list[str]
    report_id: str

    @property
    def text(self) -> str:
        """The report as ``"LABEL: text"`` lines (empty sections left out)."""
        return "\n".join(f"{label.upper()}: {text}" for label, text in self.sections if text)


def parse_iu_xml(content: bytes) -> IUReport:
    """Parse one IU/OpenI XML report; raises ``xml.etree.ElementTree.ParseError`` for invalid XML."""
    root = ElementTree.fromstring(content)
    return IUReport(
        sections=[(node.get("Label") or "", (node.text or "").strip()) for node in root.iter("AbstractText")],
        images=[node.get("id") for node in root.iter("parentImage") if node.get("id")],
        mesh=[(node.text or "").strip() for node in root.iter("major")],
        report_id=next((node.get("id") for node in root.iter("IUXRId")), ""),
    )


def read_iu(
    reports: str | os.PathLike,
    images: str | os.PathLike,
    image_suffix: str = ".png",
    metadata_csv: str | os.PathLike | None = None,
    views: Sequence[str] | None = ("PA", "AP"),
) -> Iterator[Study | Problem]:
    """IU/OpenI reports (``ecgen-radiology/*.xml`` as a folder or ``NLMCXR_reports.tgz``); each ``parentImage`` id
    names ``<images>/<id><image_suffix>`` (``NLMCXR_png`` layout). ``metadata_csv`` (a DICOM header table with
    ``imageid`` and ``View Position`` columns, e.g. ``nlmcxr_dicom_metadata.csv.gz``) with ``views`` keeps only
    those views (frontal by default)."""
    images = Path(images)
    metadata = _read_table(Path(metadata_csv), "imageid", ["View Position"]) if metadata_csv else {}
    wanted_views = {v.upper() for v in views} if (views and metadata) else None
    for name, content, error in _iu_documents(Path(reports)):
        if error:
            yield Problem(name, error)
            continue
        try:
            parsed = parse_iu_xml(content)
        except ElementTree.ParseError as e:
            yield Problem(name, f"invalid XML ({e})")
            continue
        ids = parsed.images
        if not ids:
            yield Problem(name, "report has no images (no parentImage)")
            continue
        if wanted_views is not None:
            for image_id in (i for i in ids if i not in metadata):
                yield Problem(name, f"image {image_id} is not in {metadata_csv}")
            found = [metadata[i]["View Position"].strip().upper() for i in ids if i in metadata]
            ids = [i for i in ids if i in metadata and metadata[i]["View Position"].strip().upper() in wanted_views]
            if not ids:
                yield Problem(name, f"no image with view {sorted(wanted_views)} (views found: {found})")
                continue
        images_of_report = [str(images / f"{i}{image_suffix}") for i in ids]
        yield Study(name, images_of_report, parsed.text, parsed.report_id or name, extra={"mesh": parsed.mesh})


# ------------------------------------------------------------------------------------------------- MIMIC-CXR
def _read_table(path: Path, key: str, columns: Sequence[str]) -> dict[str, dict]:
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in (key, *columns) if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing} (columns: {reader.fieldnames})")
        return {row[key]: row for row in reader}


def read_mimic(
    images: str | os.PathLike,
    reports: str | os.PathLike | None = None,
    split_csv: str | os.PathLike | None = None,
    metadata_csv: str | os.PathLike | None = None,
    views: Sequence[str] | None = ("PA", "AP"),
    radgraph: dict | None = None,
) -> Iterator[Study | Problem]:
    """MIMIC-CXR(-JPG): images under ``<images>/files/pXX/pSUBJECT/sSTUDY/*.jpg`` (``files/`` optional), reports at
    ``<reports>/files/pXX/pSUBJECT/sSTUDY.txt`` (default: beside the study folders). ``split_csv``
    (``mimic-cxr-2.0.0-split.csv[.gz]``) gives the official split; ``metadata_csv`` with ``views`` keeps only
    those ``ViewPosition`` values. ``radgraph`` (``{"pXX/pSUBJECT/sSTUDY.txt": triplets}``) replaces text
    extraction for the studies it covers."""
    image_root = Path(images)
    image_root = image_root / "files" if (image_root / "files").is_dir() else image_root
    report_root = Path(reports) if reports is not None else image_root
    report_root = report_root / "files" if (report_root / "files").is_dir() else report_root
    splits = _read_table(Path(split_csv), "dicom_id", ["split"]) if split_csv else {}
    metadata = _read_table(Path(metadata_csv), "dicom_id", ["ViewPosition"]) if metadata_csv else {}
    wanted_views = {v.upper() for v in views} if (views and metadata) else None
    for group in sorted(p for p in report_root.iterdir() if p.is_dir() and p.name.startswith("p")):
        for subject in sorted(p for p in group.iterdir() if p.is_dir() and p.name.startswith("p")):
            for report_file in sorted(subject.glob("s*.txt")):
                key = f"{group.name}/{subject.name}/{report_file.name}"
                study_dir = image_root / group.name / subject.name / report_file.stem
                if not study_dir.is_dir():
                    yield Problem(str(report_file), f"no image folder {study_dir}")
                    continue
                dicoms = sorted(p for p in study_dir.iterdir() if p.name.lower().endswith(_IMAGE_SUFFIXES))
                dicom_ids = {p: p.name.split(".")[0] for p in dicoms}
                if wanted_views is not None:
                    for p in dicoms:
                        if dicom_ids[p] not in metadata:
                            yield Problem(str(p), f"not in {metadata_csv}")
                    dicoms = [
                        p
                        for p in dicoms
                        if dicom_ids[p] in metadata and metadata[dicom_ids[p]]["ViewPosition"].upper() in wanted_views
                    ]
                if not dicoms:
                    yield Problem(
                        str(study_dir), "no images" + (f" with view {sorted(wanted_views)}" if wanted_views else "")
                    )
                    continue
                study_splits = {splits[dicom_ids[p]]["split"] for p in dicoms if dicom_ids[p] in splits}
                split = _split_name(study_splits.pop(), str(report_file)) if len(study_splits) == 1 else None
                if splits and split is None:
                    yield Problem(str(study_dir), f"images not (consistently) in {split_csv}")
                    continue
                triplets = radgraph.get(key) if radgraph is not None else None
                try:
                    text = "" if triplets is not None else report_file.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as e:
                    yield Problem(str(report_file), f"cannot read report ({e})")
                    continue
                yield Study(str(report_file), [str(p) for p in dicoms], text, subject.name, split, triplets)


# ------------------------------------------------------------------------------------------------- datalist
def _random_split(patient: str, seed: int, fractions: tuple[float, float]) -> str:
    digest = hashlib.sha256(f"{seed}:{patient}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    validation, test = fractions
    return "test" if u < test else "validation" if u < test + validation else "training"


def build_pretraining_datalist(
    studies: Iterable[Study | Problem],
    out: str | os.PathLike,
    extractor: Callable[[str], list] | None = None,
    check_images: bool = True,
    val_fraction: float = 0.05,
    test_fraction: float = 0.05,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Extract triplets for every study and write ``{"training", "validation", "test"}`` to ``out``.

    Each image becomes one item ``{"image", "report", "triplets"}`` with the image path relative to ``out``'s
    folder. Studies without an official split are split by patient (``seed``, fractions). Every unusable entry is
    logged as ``file: reason`` and counted. Returns a summary (counts, problems, reports per second).
    """
    extractor = extractor or ReportExtractor()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    base = out.parent.resolve()
    datalist: dict[str, list] = {name: [] for name in SPLITS}
    problems: list[Problem] = []
    reports = 0
    start = time.perf_counter()
    for record in tqdm(studies, desc="reports", unit=" reports", disable=not progress, mininterval=1.0):
        if isinstance(record, Problem):
            problems.append(record)
            logger.warning("%s: %s", record.source, record.reason)
            continue
        if record.triplets is not None:
            triplets = [list(t) for t in record.triplets]
        else:
            if not record.report.strip():
                problems.append(Problem(record.source, "empty report"))
                logger.warning("%s: empty report", record.source)
                continue
            triplets = [list(t) for t in extractor(record.report)]
        reports += 1
        split = record.split or _random_split(record.patient, seed, (val_fraction, test_fraction))
        for image in record.images:
            if check_images and not os.path.isfile(image):
                problems.append(Problem(record.source, f"image {image} does not exist"))
                logger.warning("%s: image %s does not exist", record.source, image)
                continue
            path = os.path.abspath(image)
            relative = os.path.relpath(path, base) if os.path.splitdrive(path)[0] == base.drive else path
            datalist[split].append({"image": relative, "report": record.report, "triplets": triplets})
    seconds = time.perf_counter() - start
    out.write_text(json.dumps(datalist, indent=1))
    summary = {
        "datalist": str(out),
        "reports": reports,
        "images": {name: len(items) for name, items in datalist.items()},
        "problems": len(problems),
        "seconds": round(seconds, 3),
        "reports_per_second": round(reports / seconds, 1) if seconds > 0 else None,
    }
    logger.info("wrote %s: %s", out, summary)
    return summary
