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
(file and reason) for every entry that cannot be used; nothing is dropped silently, and one bad entry never stops
the others. Every read is bounded: a report file, a CSV table and a report archive are read, after decompression,
up to ``MAX_REPORT_FILE_BYTES``, ``MAX_TABLE_BYTES`` and ``MAX_ARCHIVE_BYTES`` (a CSV line up to
``MAX_CSV_LINE_CHARS``), and a file over its cap is a problem naming it, never read whole.
"""

from __future__ import annotations

import bz2
import collections
import csv
import gzip
import hashlib
import io
import json
import logging
import lzma
import os
import re
import tarfile
import time
import xml.etree.ElementTree as ElementTree
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from medslip_monai.reports.extract import MAX_REPORT_CHARS, ReportExtractor

__all__ = [
    "Study",
    "Problem",
    "InputTooLarge",
    "read_csv",
    "read_iu",
    "IUReport",
    "parse_iu_xml",
    "read_mimic",
    "build_pretraining_datalist",
    "SPLITS",
    "MAX_REPORT_FILE_BYTES",
    "MAX_TABLE_BYTES",
    "MAX_CSV_LINE_CHARS",
    "MAX_ARCHIVE_BYTES",
]

logger = logging.getLogger(__name__)

#: Bytes of one report file (MIMIC-CXR .txt, IU/OpenI .xml, alone or in an archive); real ones are under 20 KB,
#: and the extractor reads 100,000 characters of a report at most.
MAX_REPORT_FILE_BYTES = 2**20
#: Bytes of one CSV table (studies, split, metadata) after decompression; MIMIC-CXR's metadata table is ~60 MB.
MAX_TABLE_BYTES = 2 * 2**30
#: Characters of one line of a CSV table; the csv module itself refuses fields of more than 131,072.
MAX_CSV_LINE_CHARS = 2**20
#: Bytes of one report archive (.tgz, .tar.bz2, .tar.xz, .tar) after decompression; IU's 3,955 reports are ~24 MB.
MAX_ARCHIVE_BYTES = 4 * 2**30

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
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that are not UTF-8, kept by the surrogateescape handler
_IMAGE_ID = re.compile(r"[A-Za-z0-9_.-]{1,200}")
_PROBLEM_KINDS = 20  # distinct problem kinds counted in the summary; the rest are "other"


class InputTooLarge(ValueError):
    """A file, or one of its members or lines, is larger than its cap."""


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


#: Errors of reading a (compressed) file: the file system, the decompressors, a cap.
_READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, InputTooLarge)


# -------------------------------------------------------------------------------------------- bounded reading
class _Capped(io.RawIOBase):
    """A readable binary stream raising ``InputTooLarge`` once more than ``limit`` bytes came from ``raw``."""

    def __init__(self, raw: io.IOBase, limit: int) -> None:
        super().__init__()
        self.raw, self.limit, self.count = raw, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(min(len(buffer), self.limit + 1 - self.count))
        self.count += len(data)
        if self.count > self.limit:
            raise InputTooLarge(f"more than {self.limit:,} bytes after decompression; not read further")
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.raw.close()
        super().close()


def _open_binary(path: Path, limit: int) -> io.BufferedReader:
    """``path`` decompressed (gzip, bzip2 or xz, by its first bytes) as a stream of at most ``limit`` bytes."""
    with open(path, "rb") as handle:
        magic = handle.read(6)
    opener = gzip.open if magic.startswith(b"\x1f\x8b") else bz2.open if magic.startswith(b"BZh") else open
    opener = lzma.open if magic.startswith(b"\xfd7zXZ\x00") else opener
    return io.BufferedReader(_Capped(opener(path, "rb"), limit))


def _open_text(path: Path) -> io.TextIOWrapper:
    """A (compressed) UTF-8 CSV as text of at most ``MAX_TABLE_BYTES`` bytes; bytes that are not UTF-8 become lone
    surrogates (``_UNDECODABLE``) for the reader to report, rather than stopping the file."""
    binary = _open_binary(path, MAX_TABLE_BYTES)
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _read_report_file(path: Path) -> bytes:
    """The bytes of one report file; ``InputTooLarge`` beyond ``MAX_REPORT_FILE_BYTES``."""
    with open(path, "rb") as handle:
        content = handle.read(MAX_REPORT_FILE_BYTES + 1)
    if len(content) > MAX_REPORT_FILE_BYTES:
        raise InputTooLarge(f"larger than {MAX_REPORT_FILE_BYTES:,} bytes; not a report")
    return content


class _Lines:
    """The lines of a text stream for the csv module, each at most ``MAX_CSV_LINE_CHARS`` characters (a longer
    one raises ``InputTooLarge``); ``number`` is the physical line last read."""

    def __init__(self, handle: io.TextIOBase) -> None:
        self.handle, self.number, self.limit = handle, 0, MAX_CSV_LINE_CHARS

    def __iter__(self) -> Iterator[str]:
        readline, limit = self.handle.readline, self.limit
        while True:
            line = readline(limit + 1)
            if not line:
                return
            self.number += 1
            if len(line) > limit and line[-1] not in "\r\n":
                raise InputTooLarge(f"line {self.number} is longer than {limit:,} characters")
            yield line


def _row_problem(row: dict, columns: Sequence[str | None]) -> str | None:
    """Why a CSV row cannot be read: bytes that are not UTF-8 in one of ``columns``."""
    for column in columns:
        value = row.get(column) if column else None
        if value is not None and _UNDECODABLE.search(value):
            return f"column {column!r} is not UTF-8 text"
    return None


def _split_name(value: str | None) -> str | None:
    """The split a ``split`` value names (None when empty); ``ValueError`` for an unknown one."""
    if value is None or str(value).strip() == "":
        return None
    name = _SPLIT_NAMES.get(str(value).strip().lower())
    if name is None:
        raise ValueError(f"unknown split {str(value)[:50]!r} (expected one of {sorted(_SPLIT_NAMES)})")
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
    CSV's folder). Several images of one report may be joined with ``;``. A malformed row, or one with bytes that
    are not UTF-8, is a problem naming its line; a file that ends early (truncated or corrupt compression, a line
    longer than ``MAX_CSV_LINE_CHARS``, more than ``MAX_TABLE_BYTES``) is a problem and the rows before it count."""
    path = Path(path)
    root = Path(image_root) if image_root is not None else path.parent
    try:
        handle = _open_text(path)
    except _READ_ERRORS as e:
        yield Problem(str(path), f"cannot read CSV ({e})")
        return
    with handle:
        lines = _Lines(handle)
        reader = csv.DictReader(lines)
        try:
            columns = reader.fieldnames or []
        except (*_READ_ERRORS, csv.Error) as e:
            yield Problem(str(path), f"cannot read CSV ({e})")
            return
        missing = [c for c in (image_column, report_column) if c not in columns]
        if missing:
            yield Problem(str(path), f"no column {missing[0]!r} (columns: {[c[:50] for c in columns[:50]]})")
            return
        rows = iter(reader)
        number = 1
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as e:  # the reader goes on with the next line
                number += 1
                yield Problem(f"{path}:{lines.number}", f"malformed CSV row ({e})")
                continue
            except _READ_ERRORS as e:
                yield Problem(f"{path}:{lines.number}", f"cannot read the rest of the CSV ({e})")
                return
            number += 1
            source = f"{path}:{number}"
            problem = _row_problem(row, (image_column, report_column, split_column, patient_column))
            if problem is not None:
                yield Problem(source, problem)
                continue
            images = [p.strip() for p in (row.get(image_column) or "").split(";") if p.strip()]
            if not images:
                yield Problem(source, f"empty {image_column!r}")
                continue
            if any("\x00" in p for p in images):
                yield Problem(source, f"{image_column!r} holds a NUL character")
                continue
            try:
                split = _split_name(row.get(split_column) if split_column else None)
            except ValueError as e:
                yield Problem(source, str(e))
                continue
            images = [str(root / p) if not os.path.isabs(p) else p for p in images]
            patient = (row.get(patient_column) or "") if patient_column else ""
            yield Study(source, images, row.get(report_column) or "", patient or images[0], split)


# ----------------------------------------------------------------------------------------------------- IU/OpenI
class _TarInfo(tarfile.TarInfo):
    """Tar headers that remember why the archive ended (``TarFile.next`` ends it silently at a corrupt header)
    and refuse extended headers larger than a report file (``tarfile`` reads those whole)."""

    @classmethod
    def frombuf(cls, buf, encoding, errors):
        """A header; ``InvalidHeaderError`` for an extended (pax, GNU long name) one over the report cap."""
        info = super().frombuf(buf, encoding, errors)
        extended = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME)
        if info.type in (*extended, tarfile.GNUTYPE_LONGLINK) and info.size > MAX_REPORT_FILE_BYTES:
            raise tarfile.InvalidHeaderError(f"an extended header of {info.size:,} bytes")
        return info

    @classmethod
    def fromtarfile(cls, archive):
        """The next header of ``archive``, noting in ``archive.end`` the error that ends it."""
        try:
            return super().fromtarfile(archive)
        except tarfile.HeaderError as e:
            archive.end = e
            raise


def _archive_documents(reports: Path) -> Iterator[tuple[str, bytes | None, str | None]]:
    """(name, XML bytes or None, error) of the .xml members of a (compressed) tar, read as a stream."""
    try:
        stream = _open_binary(reports, MAX_ARCHIVE_BYTES)
    except _READ_ERRORS as e:
        yield str(reports), None, f"cannot open archive ({e})"
        return
    with stream:
        try:
            archive = tarfile.open(fileobj=stream, mode="r|", tarinfo=_TarInfo, bufsize=2**16)  # noqa: SIM115
        except (*_READ_ERRORS, tarfile.TarError) as e:
            yield str(reports), None, f"cannot open archive ({e}); expected a folder of .xml reports or a .tgz"
            return
        with archive:
            archive.end = None
            last = "its start"
            while True:
                try:
                    member = archive.next()
                except (*_READ_ERRORS, tarfile.TarError) as e:
                    yield str(reports), None, f"cannot read the archive after {last} ({e}); the rest is not read"
                    return
                if member is None:
                    break
                archive.members.clear()  # tarfile keeps every header; a stream needs none of them
                last = member.name[:200]
                if not (member.isfile() and member.name.endswith(".xml")):
                    continue
                name = f"{reports}!{member.name}"
                if member.size > MAX_REPORT_FILE_BYTES:
                    yield name, None, f"member larger than {MAX_REPORT_FILE_BYTES:,} bytes ({member.size:,} bytes)"
                    continue
                try:
                    content = archive.extractfile(member).read()
                except (*_READ_ERRORS, tarfile.TarError) as e:
                    yield name, None, f"cannot read ({e}); the rest of the archive is not read"
                    return
                yield name, content, None
            if isinstance(archive.end, (tarfile.InvalidHeaderError, tarfile.TruncatedHeaderError)):
                yield str(reports), None, f"archive corrupt after {last} ({archive.end}); the rest is not read"


def _iu_documents(reports: Path) -> Iterator[tuple[str, bytes | None, str | None]]:
    """(name, XML bytes or None, error) from a folder of XML files or a .tgz/.tar of them."""
    if reports.is_dir():
        for file in sorted(reports.rglob("*.xml")):
            try:
                yield str(file), _read_report_file(file), None
            except (OSError, InputTooLarge) as e:
                yield str(file), None, f"cannot read ({e})"
        return
    yield from _archive_documents(reports)


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
    """Parse one IU/OpenI XML report; raises ``xml.etree.ElementTree.ParseError`` for invalid XML (``LookupError``
    for an unknown declared encoding)."""
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
    metadata: dict[str, dict] = {}
    if metadata_csv:
        metadata, problems = _read_table(Path(metadata_csv), "imageid", ["View Position"])
        yield from problems
    wanted_views = {v.upper() for v in views} if (views and metadata) else None
    for name, content, error in _iu_documents(Path(reports)):
        if error:
            yield Problem(name, error)
            continue
        try:
            parsed = parse_iu_xml(content)
        except (ElementTree.ParseError, LookupError, ValueError) as e:
            yield Problem(name, f"invalid XML ({e})")
            continue
        ids = parsed.images
        if not ids:
            yield Problem(name, "report has no images (no parentImage)")
            continue
        bad = [i for i in ids if not _IMAGE_ID.fullmatch(i) or ".." in i]
        if bad:
            yield Problem(name, f"image id is not a file name ({bad[0][:100]!r})")
            continue
        if wanted_views is not None:
            for image_id in (i for i in ids if i not in metadata):
                yield Problem(name, f"image not in the metadata table ({image_id}, {metadata_csv})")
            found = [metadata[i]["View Position"].strip().upper() for i in ids if i in metadata]
            ids = [i for i in ids if i in metadata and metadata[i]["View Position"].strip().upper() in wanted_views]
            if not ids:
                yield Problem(name, f"no image with view {sorted(wanted_views)} (views found: {found})")
                continue
        images_of_report = [str(images / f"{i}{image_suffix}") for i in ids]
        yield Study(name, images_of_report, parsed.text, parsed.report_id or name, extra={"mesh": parsed.mesh})


# ------------------------------------------------------------------------------------------------- MIMIC-CXR
def _read_table(path: Path, key: str, columns: Sequence[str]) -> tuple[dict[str, dict], list[Problem]]:
    """``{row[key]: {column: value}}`` of a (compressed) CSV table, keeping only ``columns``, and the problems of
    rows that could not be read. ``ValueError`` naming the file when it cannot be opened or lacks a column."""
    table: dict[str, dict] = {}
    problems: list[Problem] = []
    try:
        handle = _open_text(path)
    except _READ_ERRORS as e:
        raise ValueError(f"cannot read table {path} ({e}); check the path") from None
    with handle:
        lines = _Lines(handle)
        reader = csv.reader(lines)
        try:
            header = next(reader, [])
        except (*_READ_ERRORS, csv.Error) as e:
            raise ValueError(f"cannot read table {path} ({e})") from None
        missing = [c for c in (key, *columns) if c not in header]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing} (columns: {[c[:50] for c in header[:50]]})")
        wanted = [(c, len(header) - 1 - header[::-1].index(c)) for c in (key, *columns)]  # the last, as DictReader
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                problems.append(Problem(f"{path}:{lines.number}", f"malformed CSV row ({e})"))
                continue
            except _READ_ERRORS as e:
                problems.append(Problem(f"{path}:{lines.number}", f"cannot read the rest of the table ({e})"))
                break
            if len(row) <= max(i for _, i in wanted):
                if any(row):
                    problems.append(Problem(f"{path}:{lines.number}", "short row (fewer columns than the header)"))
                continue
            values = {c: row[i] for c, i in wanted}
            if any(_UNDECODABLE.search(v) for v in values.values()):
                problems.append(Problem(f"{path}:{lines.number}", "not UTF-8 text"))
                continue
            table[values[key]] = values
    return table, problems


def _list(folder: Path, keep: Callable[[Path], bool]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if keep(p))


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
    if not report_root.is_dir():
        raise FileNotFoundError(f"no MIMIC-CXR report folder {report_root}; give --reports (or --images) a folder")
    splits: dict[str, dict] = {}
    metadata: dict[str, dict] = {}
    if split_csv:
        splits, problems = _read_table(Path(split_csv), "dicom_id", ["split"])
        yield from problems
    if metadata_csv:
        metadata, problems = _read_table(Path(metadata_csv), "dicom_id", ["ViewPosition"])
        yield from problems
    wanted_views = {v.upper() for v in views} if (views and metadata) else None
    for group in _list(report_root, lambda p: p.is_dir() and p.name.startswith("p")):
        try:
            subjects = _list(group, lambda p: p.is_dir() and p.name.startswith("p"))
        except OSError as e:
            yield Problem(str(group), f"cannot list ({e})")
            continue
        for subject in subjects:
            try:
                report_files = sorted(subject.glob("s*.txt"))
            except OSError as e:
                yield Problem(str(subject), f"cannot list ({e})")
                continue
            for report_file in report_files:
                key = f"{group.name}/{subject.name}/{report_file.name}"
                study_dir = image_root / group.name / subject.name / report_file.stem
                if not study_dir.is_dir():
                    yield Problem(str(report_file), f"no image folder ({study_dir})")
                    continue
                try:
                    dicoms = _list(study_dir, lambda p: p.name.lower().endswith(_IMAGE_SUFFIXES))
                except OSError as e:
                    yield Problem(str(study_dir), f"cannot list ({e})")
                    continue
                dicom_ids = {p: p.name.split(".")[0] for p in dicoms}
                if wanted_views is not None:
                    for p in dicoms:
                        if dicom_ids[p] not in metadata:
                            yield Problem(str(p), f"not in the metadata table ({metadata_csv})")
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
                try:
                    split = _split_name(study_splits.pop()) if len(study_splits) == 1 else None
                except ValueError as e:
                    yield Problem(str(study_dir), f"{e} in {split_csv}")
                    continue
                if splits and split is None:
                    yield Problem(str(study_dir), f"images missing from the split table or in several ({split_csv})")
                    continue
                triplets = radgraph.get(key) if radgraph is not None else None
                try:
                    text = "" if triplets is not None else _read_report_file(report_file).decode("utf-8")
                except (OSError, UnicodeDecodeError, InputTooLarge) as e:
                    yield Problem(str(report_file), f"cannot read report ({e})")
                    continue
                yield Study(str(report_file), [str(p) for p in dicoms], text, subject.name, split, triplets)


# ------------------------------------------------------------------------------------------------- datalist
def _random_split(patient: str, seed: int, fractions: tuple[float, float]) -> str:
    digest = hashlib.sha256(f"{seed}:{patient}".encode(errors="surrogatepass")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    validation, test = fractions
    return "test" if u < test else "validation" if u < test + validation else "training"


def _problem_kind(reason: str) -> str:
    """A reason without its particulars (what follows `` (``), for counting problems by kind."""
    return reason.split(" (", 1)[0][:100]


def build_pretraining_datalist(
    studies: Iterable[Study | Problem],
    out: str | os.PathLike,
    extractor: Callable[[str], list] | None = None,
    check_images: bool = True,
    val_fraction: float = 0.05,
    test_fraction: float = 0.05,
    seed: int = 0,
    progress: bool = True,
    max_report_chars: int | None = MAX_REPORT_CHARS,
) -> dict:
    """Extract triplets for every study and write ``{"training", "validation", "test"}`` to ``out``.

    Each image becomes one item ``{"image", "report", "triplets"}`` with the image path relative to ``out``'s
    folder. Studies without an official split are split by patient (``seed``, fractions). Every unusable entry
    (including a report longer than ``max_report_chars``: labels from part of it could be wrong) is logged as
    ``file: reason``, counted and skipped; ``ValueError`` when no image is left, and then ``out`` is not written.
    Returns a summary (counts, problems by kind, reports per second).
    """
    extractor = extractor or ReportExtractor(max_chars=max_report_chars)
    out = Path(out)
    base = out.parent.resolve()
    datalist: dict[str, list] = {name: [] for name in SPLITS}
    problems, kinds = 0, collections.Counter()
    first: Problem | None = None
    reports = 0
    start = time.perf_counter()

    def problem(record: Problem) -> None:
        nonlocal problems, first
        problems += 1
        first = first or record
        kind = _problem_kind(record.reason)
        kinds[kind if kind in kinds or len(kinds) < _PROBLEM_KINDS else "other"] += 1
        logger.warning("%s: %s", record.source, record.reason)

    for record in tqdm(studies, desc="reports", unit=" reports", disable=not progress, mininterval=1.0):
        if isinstance(record, Problem):
            problem(record)
            continue
        if record.triplets is not None:
            triplets = [list(t) for t in record.triplets]
        else:
            if not record.report.strip():
                problem(Problem(record.source, "empty report"))
                continue
            if max_report_chars is not None and len(record.report) > max_report_chars:
                reason = f"report longer than {max_report_chars:,} characters ({len(record.report):,})"
                problem(Problem(record.source, reason))
                continue
            triplets = [list(t) for t in extractor(record.report)]
        reports += 1
        split = record.split or _random_split(record.patient, seed, (val_fraction, test_fraction))
        for image in record.images:
            if check_images and not os.path.isfile(image):
                problem(Problem(record.source, f"image does not exist ({image})"))
                continue
            path = os.path.abspath(image)
            relative = os.path.relpath(path, base) if os.path.splitdrive(path)[0] == base.drive else path
            datalist[split].append({"image": relative, "report": record.report, "triplets": triplets})
    seconds = time.perf_counter() - start
    if not any(datalist.values()):
        example = f"; the first: {first.source}: {first.reason}" if first else ""
        raise ValueError(
            f"no usable study ({reports} reports read, {problems} problem(s)){example}; fix the input (each problem "
            f"is a warning above); {out} is not written"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(datalist, indent=1))
    summary = {
        "datalist": str(out),
        "reports": reports,
        "images": {name: len(items) for name, items in datalist.items()},
        "problems": problems,
        "problem_kinds": dict(kinds.most_common()),
        "seconds": round(seconds, 3),
        "reports_per_second": round(reports / seconds, 1) if seconds > 0 else None,
    }
    if problems:
        listed = ", ".join(f"{count} {kind}" for kind, count in kinds.most_common())
        logger.info("%d problem(s), each a warning above, by kind: %s", problems, listed)
    logger.info("wrote %s: %s", out, summary)
    return summary
