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
"""Quality of the report extractor against labelled report sets that exist offline.

* ``radlabels==0.2.0`` (PyPI, MIT): 1,000 synthetic MIMIC-style reports with report-level present / absent /
  uncertain labels for 48 findings (silver: produced by radlabels' RadGraph rules);
* a gold set we wrote (``tests/data/iu_gold.json``): sentences of the real IU/OpenI reports shipped inside the
  ``torchxrayvision==1.5.7`` wheel, identified by report, section, sentence number and SHA-1 (the text itself is
  CC BY-NC-ND and is not redistributed), each with the findings it states as present or absent.

Both are read straight from the downloaded wheels (``zipfile``); nothing is installed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping

from medslip_monai.reports.corpora import IUReport, parse_iu_xml
from medslip_monai.reports.extract import ReportExtractor, split_sentences

__all__ = [
    "RADLABELS_TO_VOCAB",
    "finding_status",
    "score",
    "radlabels_cases",
    "iu_sections",
    "iu_gold_cases",
    "evaluate_radlabels",
    "evaluate_iu_gold",
    "evaluate_iu_mesh",
    "MESH_TO_VOCAB",
    "markdown_table",
]

#: Our finding (or "a|b" for either) <- the radlabels labels that mean it. Left out: labels whose definition mixes
#: findings we keep apart (``pulmonary_congestion_...`` lists "pulmonary edema" as an alias, ``air_space_opacity``
#: lists "pneumonia" and "consolidation") and devices/places outside the vocabulary.
RADLABELS_TO_VOCAB: dict[str, tuple[str, ...]] = {
    "effusion": ("pleural_effusion",),
    "pneumothorax": ("pneumothorax",),
    "atelectasis": ("atelectasis",),
    "cardiomegaly": ("cardiomegaly",),
    "edema": ("pulmonary_edema",),
    "consolidation": ("consolidation",),
    "pneumonia": ("pneumonia",),
    "emphysema": ("emphysema",),
    "opacity": ("lung_opacity",),
    "nodule|mass": ("lung_nodule_or_mass",),
    "fracture": ("fracture_generic", "acute_rib_fracture", "non_acute_rib_fracture"),
    "hernia": ("hiatus_hernia", "other_hernia"),
    "hyperinflate": ("hyperinflation",),
    "tortuous@aorta": ("tortuous_aorta",),
    "calcification@aorta": ("calcification_of_the_aorta",),
    "pacemaker": ("pacemaker_electronic_cardiac_device_or_wires",),
    "tube": ("endotracheal_tube", "enteric_tube", "tracheostomy_tube", "intercostal_drain"),
    "infiltrate": ("infiltration",),
}
_RADLABELS_STATUS = {"definitely present": "present", "definitely absent": "absent", "uncertain": "uncertain"}
_PRIORITY = ("present", "uncertain", "absent")


def finding_status(mentions: Iterable, finding: str, uncertain: str = "ignore") -> str | None:
    """Report-level status of ``finding`` from mentions: present > uncertain > absent, or None. ``"a|b"`` means
    either finding, ``"a@place"`` only mentions located at that anatomy. ``uncertain`` ("ignore", "positive",
    "negative") maps uncertain mentions as the extractor option does."""
    finding, _, place = finding.partition("@")
    names = set(finding.split("|"))
    as_status = {"ignore": "uncertain", "positive": "present", "negative": "absent"}[uncertain]
    statuses = {
        as_status if m.status == "uncertain" else m.status
        for m in mentions
        if m.pathology in names and (not place or place in m.anatomies)
    }
    return next((s for s in _PRIORITY if s in statuses), None)


def score(pairs: Iterable[tuple[str, str | None, str | None]]) -> dict:
    """Per-finding precision/recall/F1 of "present", absent recall, and negation accuracy.

    ``pairs`` are ``(finding, gold status, predicted status)``. Negation accuracy counts the cases where gold is
    present or absent and the extractor also states the finding as present or absent: the share with the same
    polarity.
    """
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for finding, gold, pred in pairs:
        c = counts[finding]
        c["tp"] += gold == "present" and pred == "present"
        c["fp"] += gold != "present" and pred == "present"
        c["fn"] += gold == "present" and pred != "present"
        c["gold_absent"] += gold == "absent"
        c["absent_found"] += gold == "absent" and pred == "absent"
        if gold in ("present", "absent") and pred in ("present", "absent"):
            c["polar"] += 1
            c["polar_agree"] += gold == pred
    per_finding = {}
    for finding, c in sorted(counts.items()):
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else float("nan")
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else float("nan")
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        per_finding[finding] = {
            "support": c["tp"] + c["fn"],
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "absent": c["gold_absent"],
            "absent_recall": c["absent_found"] / c["gold_absent"] if c["gold_absent"] else float("nan"),
        }
    scored = [v["f1"] for v in per_finding.values() if v["support"] > 0]
    polar = sum(c["polar"] for c in counts.values())
    return {
        "per_finding": per_finding,
        "macro_f1": sum(scored) / len(scored) if scored else float("nan"),
        "negation_accuracy": sum(c["polar_agree"] for c in counts.values()) / polar if polar else float("nan"),
        "negation_cases": polar,
    }


# ------------------------------------------------------------------------------------------------ radlabels
def radlabels_cases(wheel: str | os.PathLike) -> list[tuple[str, str, dict[str, str]]]:
    """``[(report id, text, {label: status})]`` from the radlabels wheel."""
    with zipfile.ZipFile(wheel) as archive:
        labels = json.loads(archive.read("radlabels/samples/synthetic_labels.json"))
        prefix = "radlabels/samples/synthetic_reports/"
        return [
            (
                key,
                archive.read(f"{prefix}{key}.txt").decode("utf-8"),
                {k: _RADLABELS_STATUS[v] for k, v in labels[key].items()},
            )
            for key in sorted(labels)
        ]


def _radlabels_gold(labels: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    statuses = {labels[n] for n in names if n in labels}
    return next((s for s in _PRIORITY if s in statuses), None)


def evaluate_radlabels(wheel: str | os.PathLike, extractor: Callable | None = None) -> dict:
    """Report-level scores against radlabels' 1,000 labelled reports (``RADLABELS_TO_VOCAB`` findings)."""
    extractor = extractor or ReportExtractor()
    pairs = []
    for _, text, labels in radlabels_cases(wheel):
        mentions = extractor.mentions(text)
        for finding, names in RADLABELS_TO_VOCAB.items():
            predicted = finding_status(mentions, finding, extractor.uncertain)
            pairs.append((finding, _radlabels_gold(labels, names), predicted))
    return score(pairs)


# ---------------------------------------------------------------------------------------------------- IU gold
def iu_sections(wheel: str | os.PathLike) -> dict[str, dict[str, str]]:
    """``{report file name: {"findings": text, "impression": text}}`` of the IU reports in the torchxrayvision
    wheel."""
    return {name: {label.lower(): text for label, text in report.sections} for name, report in _iu_reports(wheel)}


def _iu_reports(wheel: str | os.PathLike) -> Iterator[tuple[str, IUReport]]:
    """(file name, parsed report) of every IU report in the torchxrayvision wheel."""
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read("torchxrayvision/data/NLMCXR_reports.tgz")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            if member.name.endswith(".xml"):
                yield os.path.basename(member.name), parse_iu_xml(tar.extractfile(member).read())


#: Our finding <- the IU MeSH major headings that mean it (first part of "Heading/place/degree").
MESH_TO_VOCAB: dict[str, tuple[str, ...]] = {
    "effusion": ("Pleural Effusion",),
    "pneumothorax": ("Pneumothorax",),
    "atelectasis": ("Pulmonary Atelectasis",),
    "cardiomegaly": ("Cardiomegaly",),
    "edema": ("Pulmonary Edema",),
    "consolidation": ("Consolidation",),
    "pneumonia": ("Pneumonia",),
    "emphysema": ("Emphysema", "Pulmonary Emphysema"),
    "opacity": ("Opacity",),
    "nodule": ("Nodule",),
    "mass": ("Mass",),
    "infiltrate": ("Infiltrate",),
    "fracture": ("Fractures, Bone",),
    "hernia": ("Hernia, Hiatal",),
    "calcification": ("Calcinosis", "Calcified Granuloma"),
    "scar": ("Cicatrix",),
}


def evaluate_iu_mesh(wheel: str | os.PathLike, extractor: ReportExtractor | None = None) -> dict:
    """Report-level agreement with the MeSH major headings of every IU report with text: a heading is a weak
    "present" label, its absence a weak "not present" (MeSH has no negations, so only F1 is meaningful)."""
    extractor = extractor or ReportExtractor()
    pairs = []
    for _, report in _iu_reports(wheel):
        if not report.text:
            continue
        headings = {m.split("/")[0].strip() for m in report.mesh}
        mentions = extractor.mentions(report.text)
        for finding, names in MESH_TO_VOCAB.items():
            gold = "present" if headings.intersection(names) else None
            pairs.append((finding, gold, finding_status(mentions, finding, extractor.uncertain)))
    result = score(pairs)
    result["reports"] = len(pairs) // len(MESH_TO_VOCAB)
    return result


def sentence_sha1(sentence: str) -> str:
    return hashlib.sha1(sentence.encode("utf-8")).hexdigest()


def iu_gold_cases(gold: list[dict], reports: Mapping[str, Mapping[str, str]]) -> list[tuple[str, dict]]:
    """The gold sentences' text, checked against their SHA-1: ``[(sentence, gold entry)]``."""
    cases = []
    for entry in gold:
        sentences = split_sentences(reports[entry["report"]].get(entry["section"], ""))
        sentence = sentences[entry["index"]] if entry["index"] < len(sentences) else ""
        if sentence_sha1(sentence) != entry["sha1"]:
            raise ValueError(
                f"gold sentence {entry['report']} {entry['section']}[{entry['index']}] does not match "
                "its SHA-1 (different wheel or sentence splitter)"
            )
        cases.append((sentence, entry))
    return cases


def evaluate_iu_gold(wheel: str | os.PathLike, gold: list[dict], extractor: ReportExtractor | None = None) -> dict:
    """Sentence-level scores on the gold set: every finding named in any gold entry is scored in every sentence,
    plus triplet-level (anatomy, pathology, value) precision and recall."""
    extractor = extractor or ReportExtractor()
    cases = iu_gold_cases(gold, iu_sections(wheel))
    findings = sorted({f for _, entry in cases for f in entry["findings"]})
    pairs, tp, n_pred, n_gold = [], 0, 0, 0
    for sentence, entry in cases:
        mentions = extractor.sentence_mentions(sentence)
        for finding in findings:
            predicted = finding_status(mentions, finding, extractor.uncertain)
            pairs.append((finding, entry["findings"].get(finding), predicted))
        if "triplets" in entry:
            gold_triplets = {tuple(t) for t in entry["triplets"]}
            predicted = {
                (a, m.pathology, {"present": 1, "absent": 0}[m.status])
                for m in mentions
                if m.status != "uncertain"
                for a in m.anatomies
            }
            predicted = {t for t in predicted if t[1] in findings}
            tp, n_pred, n_gold = (
                tp + len(predicted & gold_triplets),
                n_pred + len(predicted),
                n_gold + len(gold_triplets),
            )
    result = score(pairs)
    result["sentences"] = len(cases)
    result["triplet_precision"] = tp / n_pred if n_pred else float("nan")
    result["triplet_recall"] = tp / n_gold if n_gold else float("nan")
    return result


def markdown_table(result: dict) -> str:
    """Per-finding table of a ``score`` result."""
    lines = [
        "| finding | support | precision | recall | F1 | gold absent | absent recall |",
        "|---|---|---|---|---|---|---|",
    ]

    def cell(value: float) -> str:
        return "–" if value != value else f"{value:.3f}"  # NaN: nothing to score

    for finding, v in result["per_finding"].items():
        if v["support"] or v["absent"]:
            f1 = cell(v["f1"]) if v["support"] else "–"
            lines.append(
                f"| {finding} | {v['support']} | {cell(v['precision'])} | {cell(v['recall'])} | {f1} "
                f"| {v['absent']} | {cell(v['absent_recall'])} |"
            )
    lines.append(f"| **macro F1** (findings with support) | | | | **{result['macro_f1']:.3f}** | | |")
    lines.append(
        f"\nNegation accuracy: **{result['negation_accuracy']:.3f}** over {result['negation_cases']} "
        "findings stated present or absent by both gold and extractor."
    )
    return "\n".join(lines)
