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
"""Downstream readers on the real public annotation files (torchxrayvision 1.5.7 wheel; images synthesised),
class-to-entity mapping, box rasterisation and the zero-shot metrics."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import zipfile
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from medslip_monai.assets import fetch_wheel
from medslip_monai.data import BoxesToMaskd, LoadXRayd, label_fraction, load_datalist
from medslip_monai.data.downstream import (
    CXR14_CLASSES,
    Problems,
    main,
    read_covidx,
    read_cxr14,
    read_rsna,
    read_siim,
    rle_decode,
    rle_encode,
    split_by_patient,
    zero_shot_classes,
)
from medslip_monai.errors import run_command
from tests.test_image_input import dicom

__all__: list[str] = []

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def xrv(tmp_path_factory):
    """The label files of the torchxrayvision wheel, copied as they are (gzip kept) into a temporary folder."""
    folder = tmp_path_factory.mktemp("xrv")
    with zipfile.ZipFile(fetch_wheel("torchxrayvision")) as wheel:
        for name in ("Data_Entry_2017_v2020.csv.gz", "BBox_List_2017.csv.gz", "siim-pneumothorax-train-rle.csv.gz"):
            (folder / name).write_bytes(wheel.read(f"torchxrayvision/data/{name}"))
        archive = zipfile.ZipFile(io.BytesIO(wheel.read("torchxrayvision/data/kaggle_stage_2_train_labels.csv.zip")))
        (folder / "stage_2_train_labels.csv").write_bytes(archive.read("stage_2_train_labels.csv"))
    return folder


def test_cxr14_labels_and_boxes_from_the_real_files(xrv, tmp_path):
    read = read_cxr14(xrv / "Data_Entry_2017_v2020.csv.gz", tmp_path, xrv / "BBox_List_2017.csv.gz", missing="keep")
    items = read["classification"]
    assert len(items) == 112_120
    counts = dict(zip(CXR14_CLASSES, np.sum([item["label"] for item in items], axis=0)))
    assert counts["Effusion"] == 13_317 and counts["Infiltration"] == 19_894 and counts["Hernia"] == 227
    assert sum(not any(item["label"]) for item in items) == 60_361  # "No Finding"
    boxes = read["grounding"]
    assert sum(len(item["boxes"]) for item in boxes) == 984 and len({item["image"] for item in boxes}) == 880
    assert Counter(item["finding"] for item in boxes)["Infiltration"] > 0  # BBox_List's "Infiltrate"
    first = next(
        item for item in boxes if item["image"].endswith("00013118_008.png") and item["finding"] == "Atelectasis"
    )
    assert first["boxes"][0] == pytest.approx([225.0847, 547.0192, 86.7797, 79.1864], abs=1e-3)

    # with a few images on disk, the default policy refuses the rest and "drop" keeps what exists
    for item in boxes[:5]:
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(item["image"])
    with pytest.raises(FileNotFoundError, match="images not found"):
        read_cxr14(xrv / "Data_Entry_2017_v2020.csv.gz", tmp_path, xrv / "BBox_List_2017.csv.gz")
    kept = read_cxr14(xrv / "Data_Entry_2017_v2020.csv.gz", tmp_path, xrv / "BBox_List_2017.csv.gz", missing="drop")
    assert 1 <= len(kept["classification"]) <= 5 and len(kept["grounding"]) >= 5


def test_rsna_labels_and_boxes_from_the_real_file(xrv, tmp_path):
    read = read_rsna(xrv / "stage_2_train_labels.csv", tmp_path, missing="keep")
    assert len(read["classification"]) == 26_684
    assert sum(item["label"][0] for item in read["classification"]) == 6_012 == len(read["grounding"])
    assert sum(len(item["boxes"]) for item in read["grounding"]) == 9_555
    example = next(i for i in read["grounding"] if i["patient"] == "00436515-870c-4b36-a041-de91049b9ab4")
    assert example["boxes"] == [[264.0, 152.0, 213.0, 379.0], [562.0, 152.0, 256.0, 453.0]]
    assert example["image"].endswith("00436515-870c-4b36-a041-de91049b9ab4.dcm")


def test_siim_rle_decoding_matches_the_documented_example_and_round_trips(xrv):
    with gzip.open(xrv / "siim-pneumothorax-train-rle.csv.gz", "rt") as handle:
        lines = handle.read().splitlines()
    assert lines[0] == "ImageId, EncodedPixels"  # the leading space the reader must tolerate
    rows = [line.split(",", 1) for line in lines[1:]]
    code = dict(rows)["1.2.276.0.7230010.3.1.4.8323329.13666.1517875247.117800"]
    mask = rle_decode(code)
    rows_, cols = np.nonzero(mask)
    assert mask.sum() == 30_859 and (cols.min(), cols.max(), rows_.min(), rows_.max()) == (544, 795, 125, 390)
    positives = [c for _, c in rows if c.strip() != "-1"]
    assert len(positives) == 3_576
    for c in positives[::7]:  # every 7th component: decode then encode gives the same text
        assert rle_encode(rle_decode(c)) == c.strip()
    with pytest.raises(ValueError, match="past the end"):
        rle_decode("1048570 10")
    with pytest.raises(ValueError, match="pairs"):
        rle_decode("5 3 7")


def test_siim_reader_finds_nested_dicoms_and_writes_masks(xrv, tmp_path):
    with gzip.open(xrv / "siim-pneumothorax-train-rle.csv.gz", "rt") as handle:
        rows = [line.split(",", 1) for line in handle.read().splitlines()[1:]]
    by_image: dict[str, list[str]] = {}
    for uid, code in rows:
        by_image.setdefault(uid, []).append(code)
    several = next(uid for uid, codes in by_image.items() if len(codes) >= 3)
    negative = next(uid for uid, codes in by_image.items() if codes == ["-1"])
    single = next(uid for uid, codes in by_image.items() if len(codes) == 1 and codes[0] != "-1")
    for uid in (several, negative, single):  # the competition's study/series/instance folders
        folder = tmp_path / "dicom-images-train" / uid[:20] / uid[20:40]
        folder.mkdir(parents=True, exist_ok=True)
        dicom(folder / f"{uid}.dcm", np.full((64, 64), 100), bits=8)
    read = read_siim(
        xrv / "siim-pneumothorax-train-rle.csv.gz", tmp_path / "dicom-images-train", tmp_path / "masks", missing="drop"
    )
    labels = {item["patient"]: item["label"][0] for item in read["classification"]}
    assert labels == {several: 1, negative: 0, single: 1}
    masks = {item["patient"]: np.asarray(Image.open(item["label"])) > 0 for item in read["segmentation"]}
    union = np.logical_or.reduce([rle_decode(c) for c in by_image[several]])
    assert np.array_equal(masks[several], union) and not masks[negative].any()
    assert {item["patient"] for item in read["grounding"]} == {several, single}


def test_covidx_label_file(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "b.png").write_bytes(b"")
    labels = tmp_path / "test.txt"
    labels.write_text("101 a.png positive bimcv\n102 b.png negative rsna\n")
    read = read_covidx(labels, tmp_path)["classification"]
    assert [(i["patient"], i["label"]) for i in read] == [("101", [1]), ("102", [0])]
    labels.write_text("101 a.png positive bimcv\n102 b.png maybe bimcv\n")
    problems = Problems()
    assert [i["patient"] for i in read_covidx(labels, tmp_path, problems=problems)["classification"]] == ["101"]
    assert problems.kinds == {"unknown label": 1} and "test.txt, line 2: unknown class 'maybe'" in problems.messages[0]
    with pytest.raises(ValueError, match=r"test.txt, line 2: unknown class 'maybe'"):
        read_covidx(labels, tmp_path, strict=True)
    labels.write_text("102 b.png maybe bimcv\n")
    with pytest.raises(ValueError, match=r"test.txt: no usable item \(1 problem\(s\): 1 unknown label"):
        read_covidx(labels, tmp_path)


def test_malformed_files_are_named_with_the_problem(tmp_path, caplog):
    bad = tmp_path / "labels.csv"
    bad.write_text("patientId,x,y,width\nabc,1,2,3\n")
    with pytest.raises(ValueError, match=r"labels.csv: missing column\(s\) \['height', 'Target'\]"):
        read_rsna(bad, tmp_path)  # a file without the columns is unusable whatever the policy
    # strict: the first malformed row stops the run, named by file and line
    bad.write_text("patientId,x,y,width,height,Target\nabc,1,2,three,4,1\ndef,,,,,0\n")
    with pytest.raises(ValueError, match=r"labels.csv, line 2: 'three' is not a number"):
        read_rsna(bad, tmp_path, missing="keep", strict=True)
    # default: the row is logged with file, line and reason, counted, and the rest is read
    problems = Problems()
    read = read_rsna(bad, tmp_path, missing="keep", problems=problems)
    assert [item["patient"] for item in read["classification"]] == ["def"] and not read["grounding"]
    assert problems.kinds == {"bad box": 1} and "labels.csv, line 2: 'three' is not a number" in caplog.text
    bad.write_text("ImageId, EncodedPixels\n1.2.3,4 5 6\n1.2.4,-1\n")
    (tmp_path / "1.2.3.dcm").write_bytes(b"")
    (tmp_path / "1.2.4.dcm").write_bytes(b"")
    with pytest.raises(ValueError, match=r"labels.csv, line 2: run-length code must be pairs"):
        read_siim(bad, tmp_path, tmp_path / "masks", strict=True)
    problems = Problems()
    read = read_siim(bad, tmp_path, tmp_path / "masks", problems=problems)
    assert [item["patient"] for item in read["segmentation"]] == ["1.2.4"]
    assert problems.summary() == "1 problem(s): 1 bad run-length code"
    assert not (tmp_path / "masks" / "1.2.3.png").exists()  # an image with a bad component is left out whole


def test_ids_that_are_not_plain_file_names_never_leave_their_folder(tmp_path):
    """A SIIM ImageId of ``../../..`` once wrote its mask outside the output folder; ids are plain names or
    problems, for the masks written and for the images looked up."""
    work = tmp_path / "a" / "b" / "c"
    (work / "images").mkdir(parents=True)
    (work / "images" / "1.2.3.dcm").write_bytes(b"")
    rle = work / "rle.csv"
    hostile = ["../../..", "../../../x", "..", "/etc/passwd", "sub/1.2.3", "C:evil", "a\\b", "x\x00y"]
    rle.write_text("ImageId, EncodedPixels\n" + "".join(f"{uid},1 2\n" for uid in hostile) + "1.2.3,1 2\n")
    before = set(tmp_path.rglob("*"))
    problems = Problems()
    read = read_siim(rle, work / "images", work / "out" / "masks", problems=problems)
    assert [item["patient"] for item in read["segmentation"]] == ["1.2.3"]
    assert problems.kinds == {"unsafe name": len(hostile)}
    written = set(tmp_path.rglob("*")) - before
    assert written == {work / "out", work / "out" / "masks", work / "out" / "masks" / "1.2.3.png"}
    with pytest.raises(ValueError, match=r"rle.csv, line 2: ImageId '../../..' is not a plain file name"):
        read_siim(rle, work / "images", work / "out" / "masks", strict=True)
    # image lookups: an id never reads outside --images
    labels = work / "labels.csv"
    labels.write_text("patientId,x,y,width,height,Target\n../../etc/passwd,,,,,0\nok,,,,,0\n")
    read = read_rsna(labels, work / "images", missing="keep")
    assert [item["image"] for item in read["classification"]] == [str(work / "images" / "ok.dcm")]
    (work / "covidx.txt").write_text(
        "1 ../../../etc/passwd positive x\n2 /etc/hostname negative x\n3 y.png positive x\n"
    )
    read = read_covidx(work / "covidx.txt", work / "images", missing="keep")
    assert [item["image"] for item in read["classification"]] == [str(work / "images" / "y.png")]
    # the mask written is checked once resolved: a link planted in the mask folder is refused
    (work / "out" / "masks" / "1.2.3.png").unlink()
    (work / "out" / "masks" / "1.2.3.png").symlink_to(tmp_path / "outside.png")
    with pytest.raises(ValueError, match="outside the mask folder"):
        read_siim(rle, work / "images", work / "out" / "masks")
    assert not (tmp_path / "outside.png").exists()


def test_datalist_labels_must_be_zero_or_one_lists(tmp_path):
    datalist = tmp_path / "list.json"
    good = {"image": "a.png", "label": [1, 0, 0]}
    datalist.write_text(json.dumps({"training": [good], "validation": [good, {"image": "a.png", "label": [0, 7, 0]}]}))
    assert load_datalist(datalist, "training", check_files=False)[0]["label"] == [1, 0, 0]
    with pytest.raises(ValueError, match=r"(?s)list.json: 1 bad label.*validation\[1\]\.label\[1\] is 7, not 0 or 1"):
        load_datalist(datalist, "validation", check_files=False)
    assert load_datalist(datalist, "validation", check_files=False, check_labels=False)[1]["label"] == [0, 7, 0]
    with pytest.raises(ValueError, match=r"training\[0\]\.label has 3 value\(s\), expected 14 \(num_classes\)"):
        load_datalist(datalist, check_files=False, num_classes=14)
    cases = {  # label -> what the error says about it
        "[1, 0, 0, 1]": r" has 4 value\(s\), expected 2 \(the datalist's classes\)",
        "[0.5, 1]": r"\[0\] is 0.5, not 0 or 1",
        "[true, 0]": r"\[0\] is True, not 0 or 1",
        '["1", 0]': r"\[0\] is '1', not 0 or 1",
        "[]": " is an empty list",
        "7": " is 7, neither a list of 0/1 values nor a mask path",
    }
    for label, expected in cases.items():
        datalist.write_text(f'{{"classes": ["A", "B"], "test": [{{"image": "a.png", "label": {label}}}]}}')
        with pytest.raises(ValueError, match=r"(?s)list.json: 1 bad label.*test\[0\]\.label" + expected):
            load_datalist(datalist, "test", check_files=False)
    # segmentation lists: the label is a mask path, resolved and checked as a file
    datalist.write_text(json.dumps({"training": [{"image": "a.png", "label": "masks/a.png"}]}))
    assert load_datalist(datalist, check_files=False)[0]["label"] == str(tmp_path / "masks" / "a.png")


def test_patient_split_is_disjoint_shared_by_tasks_and_reproducible():
    items = [{"image": f"{p}_{k}.png", "patient": str(p)} for p in range(50) for k in range(3)]
    lists = {"classification": items, "grounding": items[::2]}
    splits = split_by_patient(lists, validation=0.1, test=0.2, seed=3)
    assert splits == split_by_patient(lists, validation=0.1, test=0.2, seed=3)
    patients = {name: {i["patient"] for i in split} for name, split in splits["classification"].items()}
    assert len(patients["test"]) == 10 and len(patients["validation"]) == 5
    assert not (patients["test"] & patients["training"]) and not (patients["validation"] & patients["training"])
    for name, split in splits["grounding"].items():
        assert {i["patient"] for i in split} <= patients[name]
    ten, one = label_fraction(items, 0.1, seed=0), label_fraction(items, 0.01, seed=0)
    assert len(ten) == 15 and len(one) == 2 and all(item in ten for item in one)


def test_classes_map_to_entities_or_descriptions():
    entities, new_findings, order = zero_shot_classes(
        ["COVID-19", "Effusion", "Fibrosis"],
        {"Effusion": "effusion", "Fibrosis": "tail_abnorm_obs"},
        {"COVID-19": "covid words"},
    )
    assert (
        entities == ["effusion", "tail_abnorm_obs"]
        and new_findings == {"COVID-19": "covid words"}
        and order == [2, 0, 1]
    )
    with pytest.raises(ValueError, match="neither an entity"):
        zero_shot_classes(["Unknown"], {}, {})
    with pytest.raises(ValueError, match="not a MeDSLIP entity"):
        zero_shot_classes(["X"], {"X": "not_an_entity"}, {})


def test_downstream_command_builds_datalists_from_rsna_dicoms(xrv, tmp_path):
    patients = ["00436515-870c-4b36-a041-de91049b9ab4", "0004cfab-14fd-4e49-80ba-63a80b6bddd6"]
    (tmp_path / "images").mkdir()
    for patient in patients:
        dicom(tmp_path / "images" / f"{patient}.dcm", np.full((64, 64), 50), bits=8)
    command = [
        sys.executable,
        "-m",
        "medslip_monai.data.downstream",
        "rsna",
        "--labels",
        str(xrv / "stage_2_train_labels.csv"),
        "--images",
        str(tmp_path / "images"),
        "--out",
        str(tmp_path / "rsna"),
        "--missing",
        "drop",
        "--validation",
        "0",
        "--test",
        "0.5",
    ]
    counts = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    assert sum(counts["classification"].values()) == 2 and sum(counts["grounding"].values()) == 1
    written = json.loads((tmp_path / "rsna" / "classification.json").read_text())
    assert written["classes"] == ["Pneumonia"]
    first = (written["training"] + written["test"])[0]["image"]
    assert LoadXRayd("image")({"image": first})["image"].shape == (1, 64, 64)


def test_downstream_command_skips_and_summarises_bad_rows_and_fails_only_when_nothing_is_usable(tmp_path, capsys):
    labels, out = tmp_path / "train.txt", tmp_path / "out"
    labels.write_text("1 a.png positive x\n2 b.png maybe x\n3 c.png\n4 d.png negative x\n")
    argv = ["covidx", "--labels", str(labels), "--images", str(tmp_path), "--out", str(out), "--missing", "keep"]
    counts = run_command(main, argv)
    assert sum(counts["classification"].values()) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out) == counts
    assert captured.err.strip().endswith("2 problem(s): 1 unknown label, 1 too few columns")
    with pytest.raises(SystemExit) as stopped:  # --strict: the first bad row ends the run, one plain last line
        run_command(main, [*argv, "--strict"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert stopped.value.code == 1 and last.startswith(f"error: {labels}, line 2: unknown class 'maybe'")
    with pytest.raises(ValueError, match="line 2: unknown class"):  # --verbose: the exception and its traceback
        run_command(main, [*argv, "--strict", "--verbose"])
    labels.write_text("2 b.png maybe x\n3 c.png\n")
    with pytest.raises(SystemExit):
        run_command(main, argv)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"error: {labels}: no usable item (2 problem(s): 1 unknown label, 1 too few columns")


def test_downstream_command_error_is_one_plain_line(tmp_path):
    command = [sys.executable, "-m", "medslip_monai.data.downstream", "rsna", "--labels", str(tmp_path / "gone.csv")]
    done = subprocess.run(
        [*command, "--images", str(tmp_path), "--out", str(tmp_path / "out")], capture_output=True, text=True
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert (
        done.stderr.strip().splitlines()[-1]
        == f"error: {tmp_path / 'gone.csv'}: no such file (--verbose shows the traceback)"
    )


def test_boxes_are_rasterised_with_x_along_columns():
    data = BoxesToMaskd("boxes")({"image": torch.zeros(1, 40, 60), "boxes": [[10, 5, 20, 4], [55.5, 30, 10, 20]]})
    mask = data["truth"][0]
    assert mask.shape == (40, 60) and mask[5:9, 10:30].all() and mask.sum() == 4 * 20 + 10 * 5
    with pytest.raises(ValueError, match="outside"):
        BoxesToMaskd("boxes")({"image": torch.zeros(1, 40, 60), "boxes": [[70, 5, 5, 5]]})
