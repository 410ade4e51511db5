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
"""Report extraction: sentences to triplets, RadGraph import, corpus readers and the datalist command."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tarfile

import pytest

from medslip_monai.data import triplets_to_matrix
from medslip_monai.data.synthetic import render_case
from medslip_monai.reports import ReportExtractor, extract_triplets, resolve_anatomy, split_sections
from medslip_monai.reports.corpora import Problem, build_pretraining_datalist, read_csv, read_iu, read_mimic
from medslip_monai.reports.radgraph import load_radgraph, radgraph_study_key, radgraph_triplets
from medslip_monai.vocab import ANATOMIES, PATHOLOGIES

SENTENCES = [
    ("No pleural effusion or pneumothorax.", {("pleural_unspec", "effusion", 0), ("unspecified", "pneumothorax", 0)}),
    ("There is a small left pleural effusion.", {("left_pleural", "effusion", 1)}),
    ("Small amount of right pleural fluid.", {("right_pleural", "effusion", 1)}),
    ("Bilateral small pleural effusions.", {("left_pleural", "effusion", 1), ("right_pleural", "effusion", 1)}),
    ("Enlarged cardiac silhouette.", {("heart_size", "cardiomegaly", 1)}),
    (
        "The heart is not enlarged and the lungs are clear.",
        {("heart_size", "cardiomegaly", 0), ("pulmonary", "clear", 1)},
    ),
    ("Heart size is normal.", {("heart_size", "normal", 1), ("heart_size", "cardiomegaly", 0)}),
    ("Right lower lobe consolidation.", {("lower_right_lobe", "consolidation", 1)}),
    ("Consolidation is seen in the right middle lobe.", {("middle_right_lobe", "consolidation", 1)}),
    ("Small pneumothorax at the left apex.", {("left_apical_lung", "pneumothorax", 1)}),
    ("Bibasilar atelectasis.", {("lung_bases", "atelectasis", 1)}),
    ("Possible small left pleural effusion.", set()),
    ("Pneumonia cannot be excluded.", set()),
    ("Atelectasis versus pneumonia at the right base.", set()),
    ("No suspicious pulmonary nodule.", {("pulmonary", "nodule", 0)}),
    ("Pneumothorax is not seen.", {("unspecified", "pneumothorax", 0)}),
    ("No change in the small left effusion.", {("left_pleural", "effusion", 1)}),
    (
        "There is no pneumothorax, but a small right effusion is present.",
        {("unspecified", "pneumothorax", 0), ("right_pleural", "effusion", 1)},
    ),
    (
        "Blunting of the left costophrenic angle consistent with effusion.",
        {("left_costophrenic", "blunt", 1), ("left_costophrenic", "effusion", 1)},
    ),
    ("The aorta is tortuous and calcified.", {("aorta", "tortuous", 1), ("aorta", "calcification", 1)}),
    ("Stable cardiomegaly.", {("unspecified", "cardiomegaly", 1)}),
    ("Lung volumes are low.", {("lung_volumes", "low", 1)}),
]


@pytest.mark.parametrize("sentence, expected", SENTENCES)
def test_sentences_give_the_triplets_a_reader_expects(sentence, expected):
    assert set(extract_triplets(sentence)) == expected


def test_uncertain_mentions_follow_the_policy():
    text = "Possible left lower lobe pneumonia. No effusion."
    assert extract_triplets(text) == [("unspecified", "effusion", 0)]  # no place named: the official "unspecified"
    assert ("lower_left_lobe", "pneumonia", 1) in extract_triplets(text, uncertain="positive")
    assert ("lower_left_lobe", "pneumonia", 0) in extract_triplets(text, uncertain="negative")
    likely = "Linear opacity at the left base, likely atelectasis."
    assert ("left_lower_lung", "atelectasis", 1) in extract_triplets(likely)
    assert ("left_lower_lung", "atelectasis", 1) not in extract_triplets(likely, likely_is_positive=False)
    with pytest.raises(ValueError, match="uncertain"):
        ReportExtractor(uncertain="maybe")


def test_sections_prefer_findings_and_impression_and_skip_the_indication():
    report = "INDICATION: Rule out pneumonia.\nFINDINGS: Small right effusion.\nIMPRESSION: No pneumothorax."
    assert set(split_sections(report)) == {"indication", "findings", "impression"}
    assert extract_triplets(report) == [("right_pleural", "effusion", 1), ("unspecified", "pneumothorax", 0)]
    unlabelled = "FINAL REPORT\nREASON FOR EXAM: Cough.\n\nThere is cardiomegaly.\n"  # MIMIC style, no FINDINGS
    assert extract_triplets(unlabelled) == [("unspecified", "cardiomegaly", 1)]
    assert extract_triplets("") == [] and extract_triplets("Portable AP view of the chest.") == []
    with pytest.raises(TypeError, match="string"):
        extract_triplets(None)


def test_anatomy_phrases_resolve_to_the_51_entities():
    assert resolve_anatomy(["left", "lower", "lobe"]) == ["lower_left_lobe"]
    assert resolve_anatomy(["right", "apex"]) == ["right_apical_lung"]
    assert resolve_anatomy(["bibasilar"]) == ["lung_bases"]
    assert resolve_anatomy(["heart", "size", "and", "mediastinal", "contours"]) == ["heart_size", "mediastinal"]
    assert resolve_anatomy(["left", "and", "right", "lower", "lobes"]) == ["lower_left_lobe", "lower_right_lobe"]
    assert resolve_anatomy(["left"], default_head="pleural") == ["left_pleural"]
    assert resolve_anatomy(["the", "mild"]) == []


def test_synthetic_reports_round_trip_to_the_generator_truth():
    """Every report of 300 synthetic cases gives back the generator's triplets (F1 >= 0.98)."""
    tp = fp = fn = 0
    for index in range(300):
        case = render_case(11, index, size=32)
        truth = {tuple(t) for t in case["triplets"]}
        predicted = set(extract_triplets(case["report"]))
        tp, fp, fn = tp + len(truth & predicted), fp + len(predicted - truth), fn + len(truth - predicted)
    f1 = 2 * tp / (2 * tp + fp + fn)
    print(f"synthetic round trip: tp {tp} fp {fp} fn {fn} F1 {f1:.4f}")
    assert f1 >= 0.98


def test_extracted_triplets_fill_the_official_matrix():
    triplets = extract_triplets("FINDINGS: Small left pleural effusion. No pneumothorax.")
    matrix = triplets_to_matrix(triplets)
    assert matrix.shape == (len(ANATOMIES), len(PATHOLOGIES))
    assert matrix[ANATOMIES.index("left_pleural"), PATHOLOGIES.index("effusion")] == 1
    assert matrix[ANATOMIES.index("unspecified"), PATHOLOGIES.index("pneumothorax")] == 0
    assert int((matrix == -1).sum()) == matrix.numel() - 2


# --------------------------------------------------------------------------------------------------- RadGraph
RADGRAPH = {
    "p10/p10000032/s50414267.txt": {
        "text": "Small left lower lobe effusion . No pneumothorax . Possible pneumonia .",
        "entities": {
            "1": {"tokens": "Small", "label": "OBS-DP", "start_ix": 0, "end_ix": 0, "relations": [["modify", "5"]]},
            "2": {"tokens": "left", "label": "ANAT-DP", "start_ix": 1, "end_ix": 1, "relations": [["modify", "4"]]},
            "3": {"tokens": "lower", "label": "ANAT-DP", "start_ix": 2, "end_ix": 2, "relations": [["modify", "4"]]},
            "4": {"tokens": "lobe", "label": "ANAT-DP", "start_ix": 3, "end_ix": 3, "relations": []},
            "5": {
                "tokens": "effusion",
                "label": "OBS-DP",
                "start_ix": 4,
                "end_ix": 4,
                "relations": [["located_at", "4"]],
            },
            "6": {"tokens": "pneumothorax", "label": "OBS-DA", "start_ix": 7, "end_ix": 7, "relations": []},
            "7": {"tokens": "pneumonia", "label": "OBS-U", "start_ix": 10, "end_ix": 10, "relations": []},
            "8": {"tokens": "fibrotic", "label": "OBS-DP", "start_ix": 11, "end_ix": 11, "relations": []},
        },
    },
    "p11/p11000011/s51000011.txt": {
        "text": "Heart enlarged .",
        "labeler_1": {
            "entities": {
                "1": {"tokens": "Heart", "label": "ANAT-DP", "start_ix": 0, "end_ix": 0, "relations": []},
                "2": {
                    "tokens": "enlarged",
                    "label": "OBS-DP",
                    "start_ix": 1,
                    "end_ix": 1,
                    "relations": [["located_at", "1"]],
                },
            }
        },
    },
}


def test_radgraph_annotations_become_official_style_triplets(tmp_path):
    first = RADGRAPH["p10/p10000032/s50414267.txt"]
    assert radgraph_triplets(first) == [
        ("lower_left_lobe", "effusion", 1),
        ("unspecified", "pneumothorax", 0),
        ("unspecified", "tail_abnorm_obs", 1),
    ]  # the modifier "Small" is dropped, the uncertain pneumonia ignored, "fibrotic" is a rare abnormality
    assert ("unspecified", "pneumonia", 1) in radgraph_triplets(first, uncertain="positive")
    path = tmp_path / "MIMIC-CXR_graphs.json"
    path.write_text(json.dumps(RADGRAPH))
    loaded = load_radgraph(path)
    assert loaded["p11/p11000011/s51000011.txt"] == [("heart_size", "enlarge", 1)]  # the official keeps "enlarge"
    assert radgraph_study_key("p10/p10000032/s50414267.txt") == ("10000032", "50414267")
    (tmp_path / "bad.json").write_text(json.dumps({"p1/p1/s1.txt": {"text": "x"}}))
    with pytest.raises(ValueError, match="s1.txt"):
        load_radgraph(tmp_path / "bad.json")


# ---------------------------------------------------------------------------------------------------- corpora
def _image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG fake")


def test_csv_reader_reports_every_bad_row(tmp_path):
    _image(tmp_path / "a.png")
    _image(tmp_path / "b.png")
    (tmp_path / "studies.csv").write_text(
        "image,report,split\n"
        "a.png,FINDINGS: Small left effusion.,train\n"
        "b.png,No pneumothorax.,\n"
        ",No edema.,test\n"
        "missing.png,Cardiomegaly.,test\n"
        "a.png,,test\n"
        "a.png,Clear.,holdout\n"
    )
    out = tmp_path / "lists" / "pretrain.json"
    summary = build_pretraining_datalist(read_csv(tmp_path / "studies.csv"), out, progress=False)
    datalist = json.loads(out.read_text())
    assert datalist["training"][0] == {
        "image": "../a.png",
        "report": "FINDINGS: Small left effusion.",
        "triplets": [["left_pleural", "effusion", 1]],
    }
    assert summary["reports"] == 3 and summary["problems"] == 4  # empty image, missing file, empty report, split
    assert sum(summary["images"].values()) == 2
    problems = list(read_csv(tmp_path / "nothing.csv"))
    assert isinstance(problems[0], Problem) and "nothing.csv" in problems[0].source


def test_iu_reader_takes_a_tgz_of_xml_reports(tmp_path):
    xml = (
        '<eCitation><IUXRId id="7"/><MedlineCitation><Article><Abstract>'
        '<AbstractText Label="INDICATION">Cough.</AbstractText>'
        '<AbstractText Label="FINDINGS">Mild cardiomegaly. No pneumothorax.</AbstractText>'
        '<AbstractText Label="IMPRESSION">Cardiomegaly.</AbstractText>'
        "</Abstract></Article></MedlineCitation><MeSH><major>Cardiomegaly/mild</major></MeSH>"
        '<parentImage id="CXR7_IM-1-1001"/><parentImage id="CXR7_IM-1-2001"/></eCitation>'
    )
    archive = tmp_path / "reports.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, content in (("ecgen-radiology/7.xml", xml), ("ecgen-radiology/8.xml", "<eCitation><broken")):
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    records = list(read_iu(archive, tmp_path / "png"))
    studies = [r for r in records if not isinstance(r, Problem)]
    problems = [r for r in records if isinstance(r, Problem)]
    assert len(studies) == 1 and [p.rsplit("/", 1)[1] for p in studies[0].images] == [
        "CXR7_IM-1-1001.png",
        "CXR7_IM-1-2001.png",
    ]
    assert studies[0].extra["mesh"] == ["Cardiomegaly/mild"]
    assert len(problems) == 1 and "8.xml" in problems[0].source and "invalid XML" in problems[0].reason
    assert ("unspecified", "cardiomegaly", 1) in extract_triplets(studies[0].report)
    (tmp_path / "meta.csv").write_text("imageid,View Position\nCXR7_IM-1-1001,PA\nCXR7_IM-1-2001,LL\n")
    frontal = [
        r for r in read_iu(archive, tmp_path / "png", metadata_csv=tmp_path / "meta.csv") if not isinstance(r, Problem)
    ]
    assert [p.rsplit("/", 1)[1] for p in frontal[0].images] == ["CXR7_IM-1-1001.png"]


def test_mimic_reader_uses_the_official_split_and_views(tmp_path):
    study = tmp_path / "files" / "p10" / "p10000032" / "s50414267"
    _image(study / "d1.jpg")
    _image(study / "d2.jpg")
    (study.parent / "s50414267.txt").write_text("FINAL REPORT\nFINDINGS: Right apical pneumothorax.\n")
    (study.parent / "s50000001.txt").write_text("FINDINGS: No effusion.")  # no image folder
    (tmp_path / "split.csv").write_text(
        "dicom_id,study_id,subject_id,split\nd1,50414267,10000032,validate\nd2,50414267,10000032,validate\n"
    )
    (tmp_path / "meta.csv").write_text("dicom_id,ViewPosition\nd1,PA\nd2,LATERAL\n")
    records = list(read_mimic(tmp_path, split_csv=tmp_path / "split.csv", metadata_csv=tmp_path / "meta.csv"))
    studies = [r for r in records if not isinstance(r, Problem)]
    assert len(studies) == 1 and studies[0].split == "validation" and studies[0].images[0].endswith("d1.jpg")
    assert any("s50000001" in r.source for r in records if isinstance(r, Problem))
    radgraph = {"p10/p10000032/s50414267.txt": [("right_apical_lung", "pneumothorax", 1)]}
    summary = build_pretraining_datalist(read_mimic(tmp_path, radgraph=radgraph), tmp_path / "m.json", progress=False)
    items = json.loads((tmp_path / "m.json").read_text())
    assert summary["reports"] == 1 and sum(len(v) for v in items.values()) == 2  # no metadata: both views kept
    assert next(v for v in items.values() if v)[0]["triplets"] == [["right_apical_lung", "pneumothorax", 1]]


def test_extract_command_prints_triplets():
    result = subprocess.run(
        [sys.executable, "-m", "medslip_monai.reports", "extract", "Small left pleural effusion."],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == [["left_pleural", "effusion", 1]]


def write_world_csv(world_dir, csv_path):
    """A CSV of the world's training images and reports, as a user's corpus would look."""
    datalist = json.loads((world_dir / "pretrain.json").read_text())
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "report", "split"])
        for item in datalist["training"]:
            writer.writerow([str(world_dir / item["image"]), item["report"], "train"])
    return datalist["training"]
