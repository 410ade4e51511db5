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
"""Hostile inputs for the downstream readers and datalists: seeded random corruptions of the heads of the real label
files (torchxrayvision 1.5.7 wheel), of a COVIDx file in the published format and of a datalist.

Each case checks that the reader either returns or raises a documented error (``ValueError``/``FileNotFoundError``,
``KeyError`` for a datalist without the split) naming the file; that nothing is written outside the output folder
and no image is looked up outside the image folder; that it ends within a time bound; and, when the header is
intact, that every item whose rows were not touched is still read unchanged.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import time
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from medslip_monai.assets import fetch_wheel
from medslip_monai.data.datalist import load_datalist
from medslip_monai.data.downstream import Problems, read_covidx, read_cxr14, read_rsna, read_siim

__all__: list[str] = []

pytestmark = pytest.mark.timeout(120)

SECONDS_PER_CASE = 10  # a generous bound for a few dozen rows; a hang or a runaway loop ends far later
HOSTILE_IDS = ("../../..", "../../../evil", "..", ".", "{root}/absolute_evil", "C:evil", "a\\b", "sub/dir", "x\ty")
BAD_RLE = ("-5 3", "99999999999999999999 5", "0 1048577", "5 3 7", "1.5 2", "0x10 4", "nan nan", "1048575 1 0 1")


@dataclass(frozen=True)
class Spec:
    """One input file: how to read it, which columns it must have, and the image named by each of its lines."""

    filename: str
    header: bool
    required: tuple[str, ...]
    tasks: tuple[str, ...]
    line_image: Callable[[str], str]  # a clean data line -> the file name of the image it is about
    read: Callable[[Path, Path, Problems], dict]  # (label file, image folder, problems) -> item lists


def _read_bbox(path: Path, images: Path, problems: Problems) -> dict:
    return read_cxr14(path.parent / "clean_entry.csv", images, path, missing="keep", problems=problems)


SPECS = {
    "cxr14": Spec(
        "Data_Entry_2017_v2020.csv",
        True,
        ("Image Index", "Finding Labels", "Patient ID"),
        ("classification",),
        lambda line: line.split(",")[0],
        lambda path, images, problems: read_cxr14(path, images, missing="keep", problems=problems),
    ),
    "cxr14_boxes": Spec(
        "BBox_List_2017.csv",
        True,
        ("Image Index", "Finding Label"),
        ("grounding",),
        lambda line: line.split(",")[0],
        _read_bbox,
    ),
    "rsna": Spec(
        "stage_2_train_labels.csv",
        True,
        ("patientId", "x", "y", "width", "height", "Target"),
        ("classification", "grounding"),
        lambda line: line.split(",")[0] + ".dcm",
        lambda path, images, problems: read_rsna(path, images, missing="keep", problems=problems),
    ),
    "siim": Spec(
        "train-rle.csv",
        True,
        ("ImageId", "EncodedPixels"),
        ("classification", "segmentation", "grounding"),
        lambda line: line.split(",")[0] + ".dcm",
        lambda path, images, problems: read_siim(
            path, images, images.parent / "out" / "masks", missing="keep", problems=problems
        ),
    ),
    "covidx": Spec(
        "train.txt",
        False,
        (),
        ("classification",),
        lambda line: line.split()[1],
        lambda path, images, problems: read_covidx(path, images, missing="keep", problems=problems),
    ),
}


@pytest.fixture(scope="module")
def samples() -> dict[str, bytes]:
    """The first rows of the real label files (plain text), and a COVIDx CXR-4 file in its published format."""
    texts = {}
    with zipfile.ZipFile(fetch_wheel("torchxrayvision")) as wheel:
        for name, key, rows in (("Data_Entry_2017_v2020", "cxr14", 30), ("BBox_List_2017", "cxr14_boxes", 20)):
            with gzip.open(io.BytesIO(wheel.read(f"torchxrayvision/data/{name}.csv.gz")), "rt") as handle:
                texts[key] = "".join(handle.readline() for _ in range(rows + 1))
        siim = gzip.decompress(wheel.read("torchxrayvision/data/siim-pneumothorax-train-rle.csv.gz"))
        lines = siim.decode().splitlines(keepends=True)
        uids = Counter(line.split(",")[0] for line in lines[1:])
        several = next(uid for uid in uids if uids[uid] >= 2)  # an image of several components (rows far apart)
        texts["siim"] = "".join([lines[0], *lines[1:6], *(line for line in lines[6:] if line.startswith(several))])
        archive = zipfile.ZipFile(io.BytesIO(wheel.read("torchxrayvision/data/kaggle_stage_2_train_labels.csv.zip")))
        texts["rsna"] = "".join(archive.read("stage_2_train_labels.csv").decode().splitlines(keepends=True)[:41])
    rng = random.Random(0)
    texts["covidx"] = "".join(
        f"{1000 + i} img_{i:03d}.png {rng.choice(['positive', 'negative'])} {rng.choice(['bimcv', 'rsna', 'sirm'])}\n"
        for i in range(20)
    )
    return {key: text.encode() for key, text in texts.items()}


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset)


def _data_lines(data: bytes, spec: Spec) -> list[int]:
    first = 1 if spec.header else 0
    return list(range(first, len(data.splitlines())))


def _edit_lines(data: bytes, edits: dict[int, Callable[[bytes], bytes]]) -> bytes:
    lines = data.splitlines(keepends=True)
    for index, edit in edits.items():
        body, end = lines[index].rstrip(b"\r\n"), lines[index][len(lines[index].rstrip(b"\r\n")) :]
        lines[index] = edit(body) + end
    return b"".join(lines)


def _replace_field(field: int, separator: bytes, value: bytes) -> Callable[[bytes], bytes]:
    def edit(body: bytes) -> bytes:
        fields = body.split(separator)
        fields[field] = value
        return separator.join(fields)

    return edit


def _insert(rng: random.Random, junk: bytes) -> Callable[[bytes], bytes]:
    def edit(body: bytes) -> bytes:
        at = rng.randrange(len(body) + 1)
        return body[:at] + junk + body[at:]

    return edit


# Each corruption: (clean bytes, spec, rng, root) -> (bytes, file suffix, touched line indices or None when the
# header or the whole file may be damaged, required column renamed or None)
def truncate(data, spec, rng, root):
    cut = rng.randrange(len(data))
    first = _line_of(data, cut)
    return data[:cut], "", None if spec.header and first == 0 else set(range(first, len(data.splitlines()))), None


def flip_bytes(data, spec, rng, root):
    data, touched = bytearray(data), set()
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(data))
        touched |= {_line_of(data, at), _line_of(data, at) + (data[at] == ord("\n"))}
        data[at] ^= rng.randrange(1, 256)
    return bytes(data), "", None if spec.header and 0 in touched else touched, None


def not_utf8(data, spec, rng, root):
    lines = rng.sample(_data_lines(data, spec), 2)
    junk = (b"\xff\xfe", b"\xc3\x28", b"caf\xe9", b"\xed\xa0\x80")
    return _edit_lines(data, {i: _insert(rng, rng.choice(junk)) for i in lines}), "", set(lines), None


def control_characters(data, spec, rng, root):
    lines = rng.sample(_data_lines(data, spec), 2)
    return (
        _edit_lines(data, {i: _insert(rng, rng.choice([b"\x00", b"\r", b"\x1b", b'"'])) for i in lines}),
        "",
        set(lines),
        None,
    )


def huge_field(data, spec, rng, root):
    line = rng.choice(_data_lines(data, spec))
    return _edit_lines(data, {line: _insert(rng, b"9" * 200_000)}), "", {line}, None


def crlf_bom_and_blank_lines(data, spec, rng, root):
    text = b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n")
    lines = text.splitlines(keepends=True)
    for _ in range(3):
        lines.insert(rng.randrange(1 if spec.header else 0, len(lines) + 1), rng.choice([b"\r\n", b"  \n", b",,\n"]))
    return b"".join(lines), "", set(), None


def utf16(data, spec, rng, root):
    return data.decode().encode("utf-16"), "", None, None


def rename_column(data, spec, rng, root):
    header, rest = data.split(b"\n", 1)
    names = header.decode().split(",")
    k = rng.randrange(min(len(names), 6))
    renamed = names[k].strip()
    names[k] = rng.choice([names[k].upper(), names[k] + "_", names[k].replace(" ", "") + "s"])
    required = renamed if renamed in spec.required else None
    return ",".join(names).encode() + b"\n" + rest, "", set() if required is None else None, required


def hostile_ids(data, spec, rng, root):
    lines = rng.sample(_data_lines(data, spec), 3)
    field, separator = (1, b" ") if not spec.header else (0, b",")
    edits = {i: _replace_field(field, separator, rng.choice(HOSTILE_IDS).format(root=root).encode()) for i in lines}
    return _edit_lines(data, edits), "", set(lines), None


def bad_run_lengths(data, spec, rng, root):
    lines = rng.sample(_data_lines(data, spec), 2)
    edits = {i: _replace_field(1, b",", rng.choice(BAD_RLE).encode()) for i in lines}
    return _edit_lines(data, edits), "", set(lines), None


def gzip_truncated(data, spec, rng, root):
    packed = gzip.compress(data, mtime=0)
    return packed[: rng.randrange(len(packed))], ".gz", None, None


def gzip_flipped(data, spec, rng, root):
    packed = bytearray(gzip.compress(data, mtime=0))
    for _ in range(rng.randint(1, 3)):
        packed[rng.randrange(len(packed))] ^= rng.randrange(1, 256)
    return bytes(packed), ".gz", None, None


CORRUPTIONS = [
    truncate,
    flip_bytes,
    not_utf8,
    control_characters,
    huge_field,
    crlf_bom_and_blank_lines,
    utf16,
    rename_column,
    hostile_ids,
    gzip_truncated,
    gzip_flipped,
]
CASES = [
    pytest.param(dataset, corruption, seed, id=f"{dataset}-{corruption.__name__}-{seed}")
    for dataset, spec in SPECS.items()
    for corruption in [*CORRUPTIONS, *([bad_run_lengths] if dataset == "siim" else [])]
    if spec.header or corruption is not rename_column
    for seed in (0, 1)
]


def _by_image(lists: dict, tasks: tuple[str, ...], root: Path) -> dict[tuple, str]:
    """``(task, image file name, finding) -> item`` as JSON text with the case folder written as ``<root>``."""
    return {
        (task, Path(item["image"]).name, item.get("finding")): json.dumps(item, sort_keys=True).replace(
            str(root), "<root>"
        )
        for task in tasks
        for item in lists.get(task, [])
    }


def _layout(root: Path, samples: dict[str, bytes]) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "clean_entry.csv").write_bytes(samples["cxr14"])
    return root / "images"


def _files(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.fixture(scope="module")
def clean(samples, tmp_path_factory) -> dict[str, dict[tuple, str]]:
    """What each reader makes of its clean sample."""
    result = {}
    for dataset, spec in SPECS.items():
        root = tmp_path_factory.mktemp(f"clean_{dataset}") / "a" / "b" / "c"
        images = _layout(root, samples)
        (root / spec.filename).write_bytes(samples[dataset])
        problems = Problems(strict=True)
        result[dataset] = _by_image(spec.read(root / spec.filename, images, problems), spec.tasks, root)
    return result


@pytest.mark.parametrize("dataset, corruption, seed", CASES)
def test_readers_survive_corrupted_files(samples, clean, tmp_path, dataset, corruption, seed):
    spec, data = SPECS[dataset], samples[dataset]
    root = tmp_path / "a" / "b" / "c"  # deep enough that a ../../.. escape would still land under tmp_path
    images = _layout(root, samples)
    corrupted, suffix, touched, renamed = corruption(data, spec, random.Random(seed), root)
    path = root / (spec.filename + suffix)
    path.write_bytes(corrupted)
    before = _files(tmp_path)
    problems = Problems()
    start = time.perf_counter()
    try:
        lists, error = spec.read(path, images, problems), None
    except (ValueError, FileNotFoundError) as caught:
        lists, error = {}, caught
    assert time.perf_counter() - start < SECONDS_PER_CASE
    written = _files(tmp_path) - before
    assert all(root / "out" in (file, *file.parents) for file in written), sorted(written)
    for items in lists.values():
        for item in items:
            assert Path(item["image"]).parent == images  # no lookup outside the image folder
            for key in ("mask", "label"):
                if isinstance(item.get(key), str):
                    assert Path(item[key]).parent == root / "out" / "masks"
    if error is not None:
        assert path.name in str(error), error
    if renamed is not None:
        assert isinstance(error, ValueError) and renamed in str(error)  # the column it misses
    if touched is None:
        return
    lines = defaultdict(set)  # image -> the clean lines about it
    for index in _data_lines(data, spec):
        lines[spec.line_image(data.splitlines()[index].decode())].add(index)
    intact = {key: item for key, item in clean[dataset].items() if not lines[key[1]] & touched}
    assert error is None or not intact, f"{error} although {len(intact)} item(s) were untouched"
    found = _by_image(lists, spec.tasks, root)
    assert {key: found.get(key) for key in intact} == intact


def test_hostile_ids_are_counted_and_never_written(samples, tmp_path):
    root = tmp_path / "a" / "b" / "c"
    images = _layout(root, samples)
    edits = {i: _replace_field(0, b",", HOSTILE_IDS[i - 1].format(root=root).encode()) for i in range(1, 6)}
    (root / "train-rle.csv").write_bytes(_edit_lines(samples["siim"], edits))
    problems = Problems()
    read = SPECS["siim"].read(root / "train-rle.csv", images, problems)
    assert problems.kinds == {"unsafe name": 5} and read["segmentation"]
    assert {path.parent for path in _files(tmp_path) if path.suffix == ".png"} == {root / "out" / "masks"}


@pytest.fixture(scope="module")
def datalist_text() -> str:
    rng = random.Random(0)
    splits = {
        split: [{"image": f"images/{split}_{i}.png", "label": [rng.randint(0, 1) for _ in range(3)]} for i in range(8)]
        for split in ("training", "validation")
    }
    return json.dumps({"classes": ["Effusion", "Mass", "Nodule"], **splits}, indent=1)


def _set_label(rng: random.Random, content: dict) -> None:
    item = rng.choice(content["validation"])
    choice = rng.randrange(3)
    if choice == 0:
        item["label"][rng.randrange(3)] = rng.choice([7, 2, -1, 0.5, "1", True, None, [0], float("inf")])
    elif choice == 1:
        item["label"] = item["label"][: rng.randrange(3)] or item["label"] + [0]
    else:
        item["label"] = rng.choice([7, {"a": 1}, None, 1.0])


def _restructure(rng: random.Random, content: dict) -> None:
    choice = rng.randrange(4)
    if choice == 0:
        content["validation"] = rng.choice([{"a": 1}, "items", 3, None])
    elif choice == 1:
        content["validation"][rng.randrange(8)] = rng.choice([["images/x.png"], "images/x.png", 5])
    elif choice == 2:
        content["Validation"] = content.pop("validation")
    else:
        content["validation"][rng.randrange(8)]["image"] = rng.choice(["../../../etc/passwd", "\x00", "missing.png"])


DATALIST_CORRUPTIONS = {
    "truncate": lambda text, rng: text.encode()[: rng.randrange(len(text))],
    "flip": lambda text, rng: bytes(b ^ (rng.randrange(1, 256) if rng.random() < 0.01 else 0) for b in text.encode()),
    "latin1": lambda text, rng: text.replace("Mass", "Ma\u00dfe").encode("latin-1"),
    "utf16": lambda text, rng: text.encode("utf-16"),
    "bom": lambda text, rng: b"\xef\xbb\xbf" + text.encode(),
    "deep": lambda text, rng: b"[" * 100_000 + b"]" * 100_000,
    "label": lambda text, rng: _edited(text, rng, _set_label),
    "structure": lambda text, rng: _edited(text, rng, _restructure),
}


def _edited(text: str, rng: random.Random, edit: Callable[[random.Random, dict], None]) -> bytes:
    content = json.loads(text)
    edit(rng, content)
    return json.dumps(content).encode()


@pytest.mark.parametrize("corruption", sorted(DATALIST_CORRUPTIONS))
@pytest.mark.parametrize("seed", range(3))
def test_load_datalist_survives_corrupted_json(datalist_text, tmp_path, corruption, seed):
    (tmp_path / "images").mkdir()
    for split in ("training", "validation"):
        for i in range(8):
            (tmp_path / "images" / f"{split}_{i}.png").write_bytes(b"")
    path = tmp_path / "classification.json"
    corrupted = DATALIST_CORRUPTIONS[corruption](datalist_text, random.Random(seed))
    path.write_bytes(corrupted)
    start = time.perf_counter()
    try:
        items, error = load_datalist(path, "validation"), None
    except (ValueError, FileNotFoundError, KeyError) as caught:
        items, error = None, caught
    assert time.perf_counter() - start < SECONDS_PER_CASE
    if error is not None:
        assert path.name in str(error), error
        return
    content = json.loads(corrupted.decode())  # it loaded, so it is JSON: every label it kept must be 0/1 lists
    assert len(items) == len(content["validation"])
    lists = [item["label"] for item in items if isinstance(item.get("label"), list)]
    length = len(content["classes"]) if isinstance(content.get("classes"), list) else len(lists[0]) if lists else 0
    for item in items:
        label = item.get("label")
        assert (
            label is None
            or isinstance(label, str)
            or (
                isinstance(label, list)
                and len(label) == length
                and all(type(value) in (int, float) and value in (0, 1) for value in label)
            )
        ), label
    if content == json.loads(datalist_text):
        assert [item["label"] for item in items] == [item["label"] for item in content["validation"]]


def test_a_gzip_line_bomb_is_skipped_without_reading_it_whole(tmp_path, monkeypatch):
    """A compressed label file whose one line inflates far beyond any real row: that line is a problem, the rows
    around it are read, and it is never held in memory whole (caps scaled down to keep the test fast)."""
    import gzip
    import tracemalloc

    from medslip_monai.data import downstream

    monkeypatch.setattr(downstream, "MAX_LINE_CHARS", 1 << 12)
    bomb = tmp_path / "labels.csv.gz"
    with gzip.open(bomb, "wb") as handle:
        handle.write(b"a,b\n1,2\n" + b"0" * (1 << 24) + b"\n3,4\n")
    problems = downstream.Problems()
    tracemalloc.start()
    try:
        rows = [text.strip() for _, text in downstream._lines(bomb, problems)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rows == ["a,b", "1,2", "3,4"] and "line too long" in problems.summary()
    assert peak < 4 * (1 << 20)  # far below the 16 MB line
