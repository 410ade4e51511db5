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
"""Hostile input to the report side: extraction in linear time and bounded memory on seeded random and adversarial
text up to 1 MB, decompression that stops at its caps (gzip bombs), corpus readers that report every bad entry with
its file and read the good ones (seeded random corruptions of CSV, XML and tar files), RadGraph annotations of the
wrong shape, and the command line's one-line errors.

Time bounds are ``SECONDS_PER_MB`` per megabyte (the extractor reads ordinary reports at about 1 MB/s on one core;
the first, quadratic version needed more than 100 s for half a megabyte of blanks); a SIGALRM deadline makes a
runaway case fail at its bound instead of hanging.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import re
import signal
import subprocess
import sys
import tarfile
import threading
import time
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

import pytest

from medslip_monai.reports import ReportExtractor, lexicon, split_sections
from medslip_monai.reports import corpora as corpora_module
from medslip_monai.reports.corpora import Problem, Study, build_pretraining_datalist, read_csv, read_iu, read_mimic
from medslip_monai.reports.radgraph import load_radgraph
from medslip_monai.vocab import ANATOMIES, PATHOLOGIES

__all__: list[str] = []

SECONDS_PER_MB = 4.0
SECONDS_BASE = 0.5
MEMORY_BYTES = 200 * 2**20  # tracemalloc peak of one extraction


# ------------------------------------------------------------------------------------------------------ helpers
@contextmanager
def deadline(seconds: float, what: str):
    """Fail when the block runs past ``seconds``: interrupted by SIGALRM where there is one, checked after it."""
    alarm = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    start = time.perf_counter()
    if alarm:

        def expired(signum, frame):
            raise TimeoutError(f"{what}: still running after {seconds:.1f} s")

        previous_handler = signal.signal(signal.SIGALRM, expired)
        previous_timer = signal.setitimer(signal.ITIMER_REAL, seconds)[0]
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous_handler)
            if previous_timer:  # someone else's alarm (pytest-timeout): give back what is left of it
                signal.setitimer(signal.ITIMER_REAL, max(previous_timer - elapsed, 0.01))
    assert elapsed < seconds, f"{what}: {elapsed:.2f} s, bound {seconds:.2f} s"


def time_bound(text: str) -> float:
    return SECONDS_BASE + SECONDS_PER_MB * len(text.encode("utf-8", "surrogatepass")) / 1e6


def assert_triplets(triplets) -> None:
    assert isinstance(triplets, list)
    for anatomy, pathology, value in triplets:
        assert anatomy in ANATOMIES and pathology in PATHOLOGIES and value in (0, 1)


_VOCABULARY = sorted(
    {p for phrases in lexicon.FINDING_PHRASES.values() for p in phrases}
    | set(lexicon.NEGATION_BEFORE + lexicon.NEGATION_AFTER + lexicon.UNCERTAIN_BEFORE + lexicon.UNCERTAIN_AFTER)
    | set(lexicon.PROBABLE_BEFORE + lexicon.PSEUDO_NEGATIONS + lexicon.TERMINATORS)
    | lexicon.ANATOMY_WORDS
    | lexicon.LINK_WORDS
    | lexicon.COPULAS
    | lexicon.PREPOSITIONS
    | {"the", "and", "or", "versus", "vs", "is", "are", "not", "no"}
)
_HEADERS = ("FINDINGS:", "IMPRESSION:", "INDICATION:", "COMPARISON:", "HISTORY:", "Findings:", "FINAL REPORT")
_PUNCTUATION = (". ", ", ", "; ", ":", "? ", "!", "/", "-", "(", ")", "1. ", "2) ", "- ", "* ", "\u2022 ", "10:30")
_BLANKS = (" ", "\n", "\t", "\r\n", "\u00a0", "\u2028", "\x0c", "\x1c")
_ODD = ("\x00", "\ufeff", "\u0130", "\u00df", "\u0663", "\U0001f600", "\u202e", "\ufffd", "\u0301")


def random_text(seed: int, size: int) -> str:
    """Seeded text of about ``size`` characters: lexicon words and phrases, punctuation, section headers, runs
    of blanks, long repeats, long tokens and odd unicode, in random proportions."""
    rng = random.Random(seed)
    weights = [rng.random() for _ in range(8)]
    pieces: list[str] = []
    length = 0
    while length < size:
        kind = rng.choices(range(8), weights)[0]
        if kind in (0, 1):
            piece = rng.choice(_VOCABULARY) + " "
        elif kind == 2:
            piece = rng.choice(_PUNCTUATION)
        elif kind == 3:
            label = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ /&()-") for _ in range(rng.randint(1, 45)))
            piece = rng.choice([*_HEADERS, label + ":", label + " " * rng.randint(0, 50) + ":"]) + " "
        elif kind == 4:
            piece = rng.choice(_BLANKS) * int(10 ** rng.uniform(0, 4))
        elif kind == 5:
            phrase = rng.choice(_VOCABULARY) + rng.choice((" ", ". ", ", ", "\n", "  "))
            piece = phrase * int(10 ** rng.uniform(0, 3.3))
        elif kind == 6:
            piece = rng.choice(("a", "a-", "x1", "-", "'")) * int(10 ** rng.uniform(0, 4))
        else:
            code = rng.randint(0x80, 0x10FFFF)
            piece = rng.choice(_ODD) if rng.random() < 0.5 or 0xD800 <= code < 0xE000 else chr(code)
        pieces.append(piece)
        length += len(piece)
    return "".join(pieces)[:size]


#: Texts that made the first version quadratic in time or memory (or could make a careless one so), by name.
ADVERSARIAL = {
    "no_then_500k_blanks": lambda: "no" + " " * 500_000,
    "300k_newlines": lambda: "\n" * 300_000,
    "no_effusion_x50k": lambda: "no effusion " * 50_000,
    "blank_newline_mix": lambda: " \n\t\n  \r\n" * 60_000,
    "label_starts": lambda: "a  " * 100_000,
    "labels_then_blanks": lambda: "AB CD  " * 20 + " " * 400_000 + "x",
    "colons": lambda: ":" * 300_000,
    "headers_x25k": lambda: "FINDINGS: small left effusion.\n" * 25_000,
    "short_headers": lambda: "\nA :" * 100_000,
    "versus_x12k": lambda: "effusion versus " * 12_000,
    "link_word_far_back": lambda: "left effusion consistent " + "consolidation " * 15_000,
    "open_cues": lambda: "possible effusion " * 11_000,
    "sentence_ends": lambda: ". " * 150_000,
    "list_markers": lambda: "\n 1. " * 60_000,
    "long_token": lambda: "a" * 500_000,
    "hyphen_chain": lambda: "a-" * 250_000,
    "no_break_spaces": lambda: "\u00a0" * 300_000,
    "dotted_capital_i": lambda: "\u0130" * 100_000,
}


# ------------------------------------------------------------------------------------------- extraction time
@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_text_is_read_in_linear_time(name):
    text = ADVERSARIAL[name]()
    with deadline(time_bound(text), f"{name}, no length cap"):
        assert_triplets(ReportExtractor(max_chars=None)(text))
    with deadline(SECONDS_BASE + SECONDS_PER_MB * 0.4, f"{name}, default cap"):
        assert_triplets(ReportExtractor()(text))


@pytest.mark.parametrize("seed, size", [(0, 2_000), (1, 20_000), (2, 100_000), (3, 300_000), (4, 1_000_000)])
def test_random_text_is_read_in_linear_time(seed, size):
    text = random_text(seed, size)
    for extractor in (ReportExtractor(max_chars=None), ReportExtractor(uncertain="positive", likely_is_positive=False)):
        with deadline(time_bound(text), f"random text {seed} of {size:,} characters"):
            assert_triplets(extractor(text))


# ----------------------------------------------------------------------------------------- extraction memory
@pytest.mark.parametrize(
    "name", ["no_effusion_x50k", "versus_x12k", "link_word_far_back", "open_cues", "headers_x25k", "random"]
)
def test_extraction_memory_is_bounded(name):
    """Peak memory of 100,000 characters (the default cap), without a cap; and of 1 MB with the default cap."""
    text = random_text(5, 1_000_000) if name == "random" else ADVERSARIAL[name]()
    for extractor, sample in ((ReportExtractor(max_chars=None), text[:100_000]), (ReportExtractor(), text * 2)):
        tracemalloc.start()
        try:
            with deadline(10 * time_bound(sample[:100_000]), f"{name} under tracemalloc"):
                extractor(sample)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < MEMORY_BYTES, f"{name}: {peak / 2**20:.0f} MiB"
        assert peak < 64 * len(sample[:100_000]) + 8 * 2**20, f"{name}: {peak / 2**20:.1f} MiB, not linear"


def test_long_reports_are_truncated_with_a_warning(caplog):
    report = "FINDINGS: Small left pleural effusion. " * 3000 + "IMPRESSION: Large right pneumothorax."
    assert len(report) > 100_000
    with caplog.at_level("WARNING"):
        capped = ReportExtractor()(report)
    assert capped == ReportExtractor(max_chars=None)(report[:100_000]) == [("left_pleural", "effusion", 1)]
    assert "first 100000" in caplog.text
    assert ("right_apical_lung", "pneumothorax", 1) not in capped
    assert ReportExtractor(max_chars=None)(report)[-1][1] == "pneumothorax"
    with pytest.raises(ValueError, match="max_chars"):
        ReportExtractor(max_chars=0)


#: The first version's header pattern (quadratic on runs of blanks), the reference the linear one must match.
_FIRST_HEADER = re.compile(r"(?:^|(?<=\n)|(?<=\.\s)|(?<=\s\s))\s*([A-Za-z][A-Za-z /&()-]{1,40}?)\s*:(?!\d)", re.M)


def _first_sections(text: str) -> dict[str, str]:
    """``split_sections`` as first written, on the reference pattern (short texts only)."""
    from medslip_monai.reports.extract import _SECTION_ALIASES, PREFERRED_SECTIONS, SKIPPED_SECTIONS

    sections: dict[str, str] = {}
    matches = [
        m
        for m in _FIRST_HEADER.finditer(text)
        if m.group(1).strip().upper() == m.group(1).strip()
        or m.group(1).strip().lower() in PREFERRED_SECTIONS + SKIPPED_SECTIONS
    ]
    starts = [0] + [m.end() for m in matches]
    names = [""] + [" ".join(m.group(1).lower().split()) for m in matches]
    for name, start, end in zip(names, starts, [m.start() for m in matches] + [len(text)]):
        name = _SECTION_ALIASES.get(name, name)
        body = text[start:end].strip()
        if name in SKIPPED_SECTIONS:
            body, *rest = re.split(r"\n\s*\n", body, maxsplit=1)
            if rest and rest[0].strip():
                sections[""] = f"{sections['']}\n{rest[0].strip()}" if "" in sections else rest[0].strip()
        if body:
            sections[name] = f"{sections[name]}\n{body}" if name in sections else body
    return sections


def test_sections_are_those_of_the_first_version():
    """The linear header pattern finds the sections the first one found, on 20,000 short random texts built from
    the characters that matter to it."""
    rng = random.Random(16)
    alphabet = [" ", " ", "\n", "\t", ".", ":", "A", "B", "x", "1", "/", "(", "-", "\u00a0", "\u0663"]
    words = ["FINDINGS", "IMPRESSION", "INDICATION", "Findings", "A" * 38, " " * 5, "\n\n"]
    for _ in range(20_000):
        text = "".join(
            rng.choice(alphabet + words if rng.random() < 0.5 else alphabet) for _ in range(rng.randint(0, 40))
        )
        assert split_sections(text) == _first_sections(text), repr(text)


# ------------------------------------------------------------------------------------------- decompression caps
_ZEROS_MB = gzip.compress(bytes(2**20), compresslevel=9)  # ~1 KB; gzip members may be concatenated


def _tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(format=tarfile.GNU_FORMAT)


def _tar_member(name: str, data: bytes) -> bytes:
    return _tar_header(name, len(data)) + data + bytes(-len(data) % 512)


def _iu_xml(number: int, text: str = "No pleural effusion.") -> bytes:
    return (
        f'<eCitation><IUXRId id="{number}"/><MedlineCitation><Article><Abstract>'
        f'<AbstractText Label="FINDINGS">{text}</AbstractText></Abstract></Article></MedlineCitation>'
        f'<parentImage id="CXR{number}_IM-1-1001"/></eCitation>'
    ).encode()


def test_gzip_csv_bomb_stops_at_the_line_cap(tmp_path):
    """600 KB of gzip inflating to 600 MB of zeros after one good row: the row is read, the rest is one problem
    naming the file and line, and neither time nor memory follows the inflated size."""
    bomb = tmp_path / "studies.csv.gz"
    bomb.write_bytes(gzip.compress(b"image,report\na.png,No effusion.\n") + _ZEROS_MB * 600)
    assert bomb.stat().st_size < 700_000
    tracemalloc.start()
    try:
        with deadline(5, "gzip bomb"):
            records = list(read_csv(bomb))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20
    assert [type(r) for r in records] == [Study, Problem] and records[0].report == "No effusion."
    assert records[1].source == f"{bomb}:3" and "longer than 1,048,576 characters" in records[1].reason


def test_gzip_tables_stop_at_the_table_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(corpora_module, "MAX_TABLE_BYTES", 2**20)
    rows = b"".join(b"img%07d.png,No effusion.\n" % i for i in range(200_000))  # 5 MB of good rows
    (tmp_path / "studies.csv.gz").write_bytes(gzip.compress(b"image,report\n" + rows, compresslevel=1))
    records = list(read_csv(tmp_path / "studies.csv.gz"))
    assert isinstance(records[-1], Problem) and "more than 1,048,576 bytes" in records[-1].reason
    assert str(tmp_path / "studies.csv.gz") in records[-1].source
    assert 30_000 < len(records) < 50_000 and all(isinstance(r, Study) for r in records[:-1])

    (tmp_path / "split.csv.gz").write_bytes(gzip.compress(b"dicom_id,split\n" + rows))
    (tmp_path / "files" / "p10" / "p10000001").mkdir(parents=True)
    records = list(read_mimic(tmp_path, split_csv=tmp_path / "split.csv.gz"))
    assert any("split.csv.gz" in r.source and "more than 1,048,576 bytes" in r.reason for r in records)


def test_tar_bomb_member_is_a_problem_and_the_rest_is_read(tmp_path):
    """A 600 KB .tgz whose second member declares and inflates to 600 MB: that member is a problem naming it, the
    reports around it are read, and memory stays small."""
    bomb = tmp_path / "reports.tgz"
    bomb.write_bytes(
        gzip.compress(_tar_member("ecgen-radiology/1.xml", _iu_xml(1)))
        + gzip.compress(_tar_header("ecgen-radiology/2.xml", 600 * 2**20))
        + _ZEROS_MB * 600
        + gzip.compress(_tar_member("ecgen-radiology/3.xml", _iu_xml(3)) + bytes(1024))
    )
    assert bomb.stat().st_size < 700_000
    tracemalloc.start()
    try:
        with deadline(20, "tar bomb"):
            records = list(read_iu(bomb, tmp_path / "png"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20
    assert [type(r) for r in records] == [Study, Problem, Study]
    assert records[1].source.endswith("!ecgen-radiology/2.xml") and "(629,145,600 bytes)" in records[1].reason


def test_archive_and_report_files_stop_at_their_caps(tmp_path, monkeypatch):
    monkeypatch.setattr(corpora_module, "MAX_REPORT_FILE_BYTES", 4096)
    monkeypatch.setattr(corpora_module, "MAX_ARCHIVE_BYTES", 2**20)
    members = [_tar_member(f"r/{i}.xml", _iu_xml(i)) for i in range(3)]
    members.insert(1, _tar_member("r/big.xml", _iu_xml(9, "x" * 10_000)))
    padding = _tar_member("r/padding.bin", bytes(3 * 2**20))
    (tmp_path / "reports.tgz").write_bytes(gzip.compress(b"".join(members) + padding + members[0] + bytes(1024)))
    records = list(read_iu(tmp_path / "reports.tgz", tmp_path / "png"))
    assert [type(r) for r in records] == [Study, Problem, Study, Study, Problem]
    assert "big.xml" in records[1].source and "larger than 4,096" in records[1].reason
    assert records[-1].source == str(tmp_path / "reports.tgz") and "more than 1,048,576 bytes" in records[-1].reason

    pax = tarfile.TarInfo("r/pax")
    pax.type, pax.size = tarfile.XHDTYPE, 2**20  # an extended header tarfile would read whole
    (tmp_path / "pax.tar").write_bytes(members[0] + pax.tobuf(format=tarfile.GNU_FORMAT) + bytes(2**20 + 1024))
    records = list(read_iu(tmp_path / "pax.tar", tmp_path / "png"))
    assert [type(r) for r in records] == [Study, Problem] and "an extended header of 1,048,576 bytes" in records[
        1
    ].reason

    folder = tmp_path / "xml"
    folder.mkdir()
    (folder / "1.xml").write_bytes(_iu_xml(1))
    (folder / "2.xml").write_bytes(_iu_xml(2, "x" * 10_000))
    records = list(read_iu(folder, tmp_path / "png"))
    assert [type(r) for r in records] == [Study, Problem] and "2.xml" in records[1].source

    study = tmp_path / "mimic" / "files" / "p10" / "p10000001" / "s50000001"
    study.mkdir(parents=True)
    (study / "d1.jpg").write_bytes(b"jpg")
    (study.parent / "s50000001.txt").write_text("FINDINGS: " + "No effusion. " * 1000)
    records = list(read_mimic(tmp_path / "mimic"))
    assert len(records) == 1 and "s50000001.txt" in records[0].source and "larger than 4,096" in records[0].reason


# ------------------------------------------------------------------------------------------ corrupted corpora
def _corrupt(data: bytes, rng: random.Random) -> tuple[bytes, int]:
    """A seeded corruption of ``data`` and the offset of its first changed byte."""
    how = rng.choice(["truncate", "flip", "nul", "latin1", "utf16", "bad_utf8", "quote", "garbage"])
    at = rng.randrange(len(data))
    if how == "truncate":
        return data[:at], at
    if how == "flip":
        spots = sorted(rng.sample(range(at, len(data)), min(5, len(data) - at)))
        changed = bytearray(data)
        for spot in spots:
            changed[spot] ^= 1 << rng.randrange(8)
        return bytes(changed), spots[0]
    if how == "nul":
        return data[:at] + b"\x00" * rng.randint(1, 3) + data[at:], at
    if how == "latin1":
        text = data.decode("utf-8", "replace")
        changed = text.encode("latin-1", "replace")
        first = next((i for i, (a, b) in enumerate(zip(data, changed)) if a != b), min(len(data), len(changed)))
        return changed, first
    if how == "utf16":
        return data.decode("utf-8", "replace").encode("utf-16"), 0
    if how == "bad_utf8":
        return data[:at] + b"\xff\xfe\xc3" + data[at:], at
    if how == "quote":
        return data[:at] + b'"' + data[at:], at
    return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 200))) + data[at:], at


def _clean_csv(rows: int) -> tuple[bytes, list[tuple[str, str]]]:
    handle = io.StringIO()
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["image", "report", "split"])
    expected = []
    for i in range(rows):
        report = f'FINDINGS: No effusion, row {i}.\nIMPRESSION: "Normal" \u00e9l\u00e8ve {i}.'
        writer.writerow([f"img{i}.png", report, ("train", "validate", "test", "")[i % 4]])
        expected.append((f"img{i}.png", report))
    return handle.getvalue().encode(), expected


@pytest.mark.parametrize("compressed", [False, True])
def test_csv_reader_survives_random_corruption(tmp_path, compressed):
    """60 seeded corruptions: no exception, every problem names the file, every row before the first changed byte
    is read unchanged; the datalist builder skips what is bad and fails only when nothing is left."""
    clean, expected = _clean_csv(30)
    rng = random.Random(1600 + compressed)
    for case in range(60):
        data, first_change = _corrupt(clean, rng)
        if compressed and rng.random() < 0.5:
            data = gzip.compress(data)  # corrupt text, compressed
        elif compressed:
            data, first_change = _corrupt(gzip.compress(clean), rng)[0], 0  # corrupt compression
        path = tmp_path / f"case{case}.csv{'.gz' if compressed else ''}"
        path.write_bytes(data)
        with deadline(5, f"case {case}"):
            records = list(read_csv(path))
        for record in records:
            assert isinstance(record, (Study, Problem)) and str(path) in record.source, record
        studies = {Path(r.images[0]).name: r.report for r in records if isinstance(r, Study)}
        intact = (clean[:first_change].count(b"\n") - 1) // 2  # whole rows (of two lines) before the first change
        for image, report in expected[: max(intact, 0)]:
            assert studies.get(image) == report, (case, image)
        try:
            summary = build_pretraining_datalist(records, tmp_path / "out.json", check_images=False, progress=False)
        except ValueError as e:
            assert "no usable study" in str(e) and not any(isinstance(r, Study) for r in records)
        else:
            assert summary["problems"] >= sum(isinstance(r, Problem) for r in records)


def test_csv_rows_with_bad_bytes_or_missing_columns_are_problems(tmp_path):
    clean, expected = _clean_csv(6)
    lines = clean.split(b"\n")
    lines[3] = lines[3].replace(b"img1.png", b"img1\xff.png")  # row 1 (lines 2-3): not UTF-8
    lines.insert(7, b"short")  # a row without report
    lines.insert(8, b'img9.png,"unterminated')
    (tmp_path / "s.csv").write_bytes(b"\n".join(lines))
    records = list(read_csv(tmp_path / "s.csv"))
    problems = [r for r in records if isinstance(r, Problem)]
    studies = [r for r in records if isinstance(r, Study)]
    assert problems[0].source == f"{tmp_path / 's.csv'}:3" and "not UTF-8" in problems[0].reason
    assert [Path(s.images[0]).name for s in studies][:3] == ["img0.png", "img2.png", "short"]
    assert all(str(tmp_path / "s.csv") in p.source for p in problems)
    summary = build_pretraining_datalist(records, tmp_path / "o.json", check_images=False, progress=False)
    assert summary["problem_kinds"]["empty report"] >= 1  # the short row has no report

    (tmp_path / "nothing.csv").write_text("image,report\n,\n")
    with pytest.raises(ValueError, match="no usable study.*nothing.csv:2: empty 'image'"):
        build_pretraining_datalist(read_csv(tmp_path / "nothing.csv"), tmp_path / "n.json", progress=False)
    assert not (tmp_path / "n.json").exists()


def test_iu_reader_survives_random_corruption(tmp_path):
    """Seeded corruptions of XML files in a folder and of a plain tar of them: no exception, every problem names
    its file (or the archive), untouched files and members before the first changed byte are read unchanged."""
    rng = random.Random(16)
    documents = {f"{i}.xml": _iu_xml(i, f"Small left effusion, number {i}.") for i in range(12)}
    hostile = {
        "laughs.xml": b'<!DOCTYPE a [<!ENTITY x "xxxxxxxxxx">'
        + b"".join(b'<!ENTITY x%d "%s">' % (i, (b"&x%d;" % (i - 1) if i else b"&x;") * 10) for i in range(8))
        + b"]><a>&x7;</a>",
        "deep.xml": b"<a>" * 50_000 + b"</a>" * 50_000,
        "encoding.xml": b'<?xml version="1.0" encoding="bogus"?><a/>',
        "external.xml": b'<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>',
        "traversal.xml": _iu_xml(5).replace(b"CXR5_IM-1-1001", b"../../../etc/passwd"),
        "empty.xml": b"",
    }
    folder = tmp_path / "xml"
    folder.mkdir()
    for name, content in documents.items():
        (folder / name).write_bytes(content)
    touched = set(rng.sample(sorted(documents), 6))
    for name in touched:
        (folder / name).write_bytes(_corrupt(documents[name], rng)[0])
    for name, content in hostile.items():
        (folder / name).write_bytes(content)
    with deadline(10, "XML folder"):
        records = list(read_iu(folder, tmp_path / "png"))
    by_file = {Path(r.source).name: r for r in records}
    for name in documents.keys() - touched:
        assert isinstance(by_file[name], Study) and by_file[name].report.endswith(f"number {name[:-4]}.")
    for name in hostile:
        assert isinstance(by_file[name], Problem), name
    assert all(r.source.startswith(str(folder)) for r in records)

    archive = b"".join(_tar_member(f"r/{name}", content) for name, content in documents.items()) + bytes(1024)
    offsets = {}
    for name, content in documents.items():
        offsets[name] = archive.index(content) + len(content)
    for case in range(40):
        data, first_change = _corrupt(archive, rng)
        path = tmp_path / f"case{case}.tar"
        path.write_bytes(data)
        with deadline(10, f"tar case {case}"):
            records = list(read_iu(path, tmp_path / "png"))
        for record in records:
            assert record.source.startswith(str(path)), record
        read = {r.source.rsplit("/", 1)[1]: r for r in records if isinstance(r, Study)}
        for name, end in offsets.items():
            if end < first_change:
                assert name in read and read[name].report.endswith(f"number {name[:-4]}."), (case, name)
        compressed = tmp_path / f"case{case}.tgz"
        compressed.write_bytes(_corrupt(gzip.compress(archive), rng)[0])
        with deadline(10, f"tgz case {case}"):
            assert all(r.source.startswith(str(compressed)) for r in read_iu(compressed, tmp_path / "png"))


def test_mimic_reader_reports_bad_files_and_rows(tmp_path):
    files = tmp_path / "files" / "p10"
    for subject, study in (("p10000001", "s50000001"), ("p10000002", "s50000002"), ("p10000003", "s50000003")):
        (files / subject / study).mkdir(parents=True)
        (files / subject / study / f"d{study[-1]}.jpg").write_bytes(b"jpg")
        (files / subject / f"{study}.txt").write_text("FINDINGS: Small right effusion.\n")
    (files / "p10000002" / "s50000002.txt").write_bytes(b"FINDINGS: \xff\xfe not UTF-8")
    (tmp_path / "split.csv").write_bytes(b"dicom_id,split\nd1,train\nd2,train\nd3,holdout\nd4\n\xff,test\n")
    records = list(read_mimic(tmp_path, split_csv=tmp_path / "split.csv"))
    studies = [r for r in records if isinstance(r, Study)]
    problems = {r.source.rsplit("/", 1)[-1]: r.reason for r in records if isinstance(r, Problem)}
    assert len(studies) == 1 and studies[0].split == "training" and studies[0].images[0].endswith("d1.jpg")
    assert "cannot read report" in problems["s50000002.txt"] and "unknown split 'holdout'" in problems["s50000003"]
    assert "split.csv:5" in problems and "split.csv:6" in problems  # a short row, a row that is not UTF-8
    with pytest.raises(FileNotFoundError, match="no MIMIC-CXR report folder"):
        list(read_mimic(tmp_path / "absent"))


def test_radgraph_entries_of_the_wrong_shape_are_problems(tmp_path):
    good = {"entities": {"1": {"tokens": "effusion", "label": "OBS-DP", "relations": []}}}
    chain = {
        str(i): {"tokens": "left", "label": "ANAT-DP", "relations": [["modify", str(i + 1)]]} for i in range(20_000)
    }
    chain["20000"] = {"tokens": "lobe", "label": "ANAT-DP", "relations": [["modify", "5"]]}  # and a cycle
    chain["obs"] = {"tokens": "opacity", "label": "OBS-DP", "relations": [["located_at", "0"]]}
    data = {
        "p10/p1/s1.txt": good,
        "p10/p1/s2.txt": [1, 2],
        "p10/p1/s3.txt": {"entities": {"1": "not a dict"}},
        "p10/p1/s4.txt": {"entities": {"1": {"tokens": "a", "label": "ANAT-DP", "relations": [["modify"]]}}},
        "p10/p1/s5.txt": {"entities": {"1": {"tokens": 5, "label": "OBS-DP", "relations": []}}},
        "p10/p1/s6.txt": {"entities": {"1": {"tokens": "a", "label": "OBS-DP", "relations": [["located_at", [1]]]}}},
        "p10/p1/s7.txt": {"labeler_1": {"nothing": 1}},
        "p10/p1/s8.txt": {"entities": chain},
    }
    (tmp_path / "graphs.json").write_text(json.dumps(data))
    problems: list[Problem] = []
    with deadline(10, "RadGraph"):
        loaded = load_radgraph(tmp_path / "graphs.json", problems=problems)
    assert sorted(loaded) == ["p10/p1/s1.txt", "p10/p1/s8.txt"] and loaded["p10/p1/s1.txt"]
    assert sorted(p.source.rsplit("!", 1)[1] for p in problems) == [f"p10/p1/s{i}.txt" for i in range(2, 8)]
    assert all(p.source.startswith(str(tmp_path / "graphs.json")) for p in problems)
    with pytest.raises(ValueError, match="s2.txt"):
        load_radgraph(tmp_path / "graphs.json")
    for content in ("[" * 100_000, "[1, 2]", "{", "\xff"):
        (tmp_path / "bad.json").write_text(content, encoding="latin-1")
        with pytest.raises(ValueError, match="bad.json"):
            load_radgraph(tmp_path / "bad.json")


# ------------------------------------------------------------------------------------------------ command line
def _command(*arguments: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "medslip_monai.reports", *arguments]
    return subprocess.run(command, input=stdin, capture_output=True, timeout=120, cwd=cwd)


def test_command_errors_end_with_one_short_line(tmp_path):
    result = _command("csv", "--csv", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o.json"))
    last = result.stderr.decode().strip().splitlines()[-1]
    assert result.returncode == 1 and b"Traceback" not in result.stderr
    assert last.startswith("error: ") and "missing.csv" in last and "--csv" in last and len(last) < 300

    (tmp_path / "bad.tgz").write_bytes(random.Random(0).randbytes(3000))
    arguments = (
        "iu",
        "--reports",
        str(tmp_path / "bad.tgz"),
        "--images",
        str(tmp_path),
        "--out",
        str(tmp_path / "o.json"),
    )
    result = _command(*arguments, "--quiet")
    last = result.stderr.decode().strip().splitlines()[-1]
    assert result.returncode == 1 and b"Traceback" not in result.stderr and not (tmp_path / "o.json").exists()
    assert last.startswith("error: no usable study") and "bad.tgz: cannot open archive" in last
    verbose = _command(*arguments, "--quiet", "--verbose")
    assert verbose.returncode == 1 and b"Traceback" in verbose.stderr


def test_extract_command_reads_hostile_stdin_quickly():
    for arguments, text in (((), b"no" + b" " * 500_000), (("--max-report-chars", "0"), b"\n" * 300_000)):
        start = time.perf_counter()
        result = _command("extract", "-", *arguments, stdin=text)
        assert result.returncode == 0 and json.loads(result.stdout) == []
        assert time.perf_counter() - start < 30
    result = _command("extract", "-", stdin=b"no effusion " * 50_000)
    assert json.loads(result.stdout) == [["unspecified", "effusion", 0]]
    assert b"longer than 100000 characters" in result.stderr
