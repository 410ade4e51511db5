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
"""Extraction quality on labelled reports that exist offline (the targets of docs/report_extraction.md), and the
datalist command over the 3,955 real IU reports."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from medslip_monai.assets import fetch_wheel
from medslip_monai.reports import ReportExtractor
from medslip_monai.reports.quality import evaluate_iu_gold, evaluate_iu_mesh, evaluate_radlabels, markdown_table

GOLD = json.loads((Path(__file__).parent / "data" / "iu_gold.json").read_text())
MIN_MACRO_F1 = 0.85
MIN_NEGATION_ACCURACY = 0.95


@pytest.fixture(scope="module")
def torchxrayvision_wheel():
    return fetch_wheel("torchxrayvision")


def test_iu_gold_sentences(torchxrayvision_wheel):
    """64 real IU sentences labelled by us; uncertain mentions are not "present" (the default policy)."""
    assert len(GOLD) >= 60
    result = evaluate_iu_gold(torchxrayvision_wheel, GOLD, ReportExtractor())
    print(markdown_table(result))
    assert result["macro_f1"] >= MIN_MACRO_F1
    assert result["negation_accuracy"] >= MIN_NEGATION_ACCURACY
    assert result["triplet_precision"] >= 0.85 and result["triplet_recall"] >= 0.85


def test_iu_mesh_headings(torchxrayvision_wheel):
    """All 3,927 IU reports with text against their MeSH major headings (weak labels of present findings)."""
    result = evaluate_iu_mesh(torchxrayvision_wheel)
    print(markdown_table(result))
    assert result["reports"] > 3900 and result["macro_f1"] >= MIN_MACRO_F1


def test_radlabels_reports():
    """1,000 radlabels reports; their "definitely present" includes hedged mentions, so uncertain -> present."""
    result = evaluate_radlabels(fetch_wheel("radlabels"), ReportExtractor(uncertain="positive"))
    print(markdown_table(result))
    assert result["macro_f1"] >= MIN_MACRO_F1
    assert result["negation_accuracy"] >= MIN_NEGATION_ACCURACY
    default = evaluate_radlabels(fetch_wheel("radlabels"), ReportExtractor())
    assert default["negation_accuracy"] >= MIN_NEGATION_ACCURACY


def test_datalist_command_reads_all_iu_reports(torchxrayvision_wheel, tmp_path):
    with zipfile.ZipFile(torchxrayvision_wheel) as archive:
        (tmp_path / "NLMCXR_reports.tgz").write_bytes(archive.read("torchxrayvision/data/NLMCXR_reports.tgz"))
    with tarfile.open(tmp_path / "NLMCXR_reports.tgz") as tar:
        assert sum(m.name.endswith(".xml") for m in tar) == 3955
    images, out = str(tmp_path / "png"), str(tmp_path / "iu.json")
    arguments = ["--reports", str(tmp_path / "NLMCXR_reports.tgz"), "--images", images, "--out", out]
    command = [sys.executable, "-m", "medslip_monai.reports", "iu", *arguments, "--no-check-images", "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    summary = json.loads(result.stdout)
    print(summary)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert summary["reports"] + summary["problems"] == 3955 and len(warnings) == summary["problems"]
    assert all(".xml: " in line for line in warnings)  # each problem names its file and reason
    datalist = json.loads((tmp_path / "iu.json").read_text())
    assert sum(len(v) for v in datalist.values()) > 7000 and all(datalist[s] for s in ("validation", "test"))

    with zipfile.ZipFile(torchxrayvision_wheel) as archive:  # the real DICOM header table: frontal images only
        (tmp_path / "meta.csv.gz").write_bytes(archive.read("torchxrayvision/data/nlmcxr_dicom_metadata.csv.gz"))
    command[command.index("--out") + 1] = str(tmp_path / "frontal.json")
    command += ["--metadata-csv", str(tmp_path / "meta.csv.gz")]
    frontal = json.loads(subprocess.run(command, capture_output=True, text=True, check=True, timeout=120).stdout)
    print(frontal)
    assert 3000 < sum(frontal["images"].values()) < sum(len(v) for v in datalist.values())
