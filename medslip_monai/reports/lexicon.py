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
"""Word lists of the report extractor: finding synonyms, anatomy words and their resolution, context cues.

Everything here is data written for this project. Phrases are lower-case token sequences as produced by
``tokenize``; each inflection is listed explicitly so matching is a dictionary lookup, not a lemmatiser.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from medslip_monai.vocab import ANATOMIES, PATHOLOGIES

__all__ = ["tokenize", "FINDING_PHRASES", "resolve_anatomy", "observation_to_pathology", "ANATOMY_WORDS"]

_TOKEN = re.compile(r"r/o|and/or|[a-z0-9]+(?:['-][a-z0-9]+)*|[;,?/]")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens (hyphenated words kept whole) and the punctuation ``; , ? /``."""
    return _TOKEN.findall(text.lower())


#: pathology entity -> the phrases that name it (before the rewrite rules of ``extract``).
FINDING_PHRASES: dict[str, tuple[str, ...]] = {
    "normal": ("normal", "normally", "within normal limits", "within normal limit", "normal limits"),
    "clear": ("clear", "clearing"),
    "sharp": ("sharp",),
    "sharply": ("sharply",),
    "unremarkable": ("unremarkable",),
    "intact": ("intact",),
    "stable": ("stable", "stably"),
    "effusion": ("effusion", "effusions", "hydrothorax", "hydrothoraces", "pleural fluid collection"),
    "opacity": ("opacity", "opacities", "opacification", "opacifications", "opacified", "opacifying"),
    "pneumothorax": ("pneumothorax", "pneumothoraces", "pneumothoraxes", "hydropneumothorax", "pneumothoraxs"),
    "edema": ("edema", "oedema", "edematous"),
    "atelectasis": ("atelectasis", "atelectases", "atelectatic"),
    "tube": (
        "tube",
        "tubes",
        "ett",
        "tracheostomy",
        "endotracheal tube",
        "nasogastric tube",
        "ng tube",
        "og tube",
        "feeding tube",
        "chest tube",
        "et tube",
        "enteric tube",
        "dobhoff",
    ),
    "consolidation": ("consolidation", "consolidations", "consolidative", "consolidated"),
    "process": ("process", "processes"),
    "abnormality": ("abnormality", "abnormalities"),
    "enlarge": ("enlarged", "enlargement", "enlarging", "enlarge", "enlarges"),
    "tip": ("tip", "tips"),
    "low": ("low",),
    "pneumonia": (
        "pneumonia",
        "pneumonias",
        "infection",
        "infections",
        "infectious process",
        "bronchopneumonia",
        "pneumonitis",
    ),
    "line": ("line", "lines", "central line", "central venous line"),
    "congestion": ("congestion", "congested", "vascular congestion", "venous congestion"),
    "catheter": ("catheter", "catheters"),
    "cardiomegaly": ("cardiomegaly",),
    "fracture": ("fracture", "fractures", "fractured"),
    "air": ("air", "free air", "gas"),
    "tortuous": ("tortuous", "tortuosity"),
    "lead": ("lead", "leads"),
    "disease": ("disease", "diseases"),
    "calcification": ("calcification", "calcifications", "calcified", "calcific"),
    "prominence": ("prominence", "prominent"),
    "device": ("device", "devices"),
    "engorgement": ("engorgement", "engorged"),
    "picc": ("picc", "picc line"),
    "clip": ("clip", "clips"),
    "elevation": ("elevation", "elevated"),
    "expand": ("expanded", "expansion", "well-expanded", "well expanded"),
    "nodule": ("nodule", "nodules", "nodular", "nodularity"),
    "wire": ("wire", "wires"),
    "fluid": ("fluid",),
    "degenerative": ("degenerative", "degeneration", "spondylosis"),
    "pacemaker": ("pacemaker", "pacemakers", "pacer", "aicd", "icd", "defibrillator"),
    "thicken": ("thickening", "thickened"),
    "marking": ("marking", "markings"),
    "scar": ("scar", "scars", "scarring"),
    "hyperinflate": (
        "hyperinflation",
        "hyperinflated",
        "hyperexpanded",
        "hyperexpansion",
        "overinflated",
        "overinflation",
        "hyperaerated",
    ),
    "blunt": ("blunting", "blunted", "blunt"),
    "loss": ("loss",),
    "widen": ("widened", "widening"),
    "collapse": ("collapse", "collapsed"),
    "density": ("density", "densities"),
    "emphysema": ("emphysema", "emphysematous"),
    "aerate": ("aerated", "aeration"),
    "mass": ("mass", "masses"),
    "crowd": ("crowding", "crowded"),
    "infiltrate": ("infiltrate", "infiltrates", "infiltration", "infiltrative"),
    "obscure": ("obscured", "obscuration", "obscuring", "obscures"),
    "deformity": ("deformity", "deformities", "deformed"),
    "hernia": ("hernia", "hernias", "herniation"),
    "drainage": ("drain", "drains", "drainage"),
    "distention": ("distention", "distension", "distended"),
    "shift": ("shift", "shifted"),
    "stent": ("stent", "stents"),
    "pressure": ("pressure",),
    "lesion": ("lesion", "lesions"),
    "finding": ("finding",),
    "borderline": (
        "borderline",
        "upper limits of normal",
        "upper limit of normal",
        "top normal",
        "top-normal",
        "high normal",
        "high-normal",
    ),
    "hardware": ("hardware",),
    "dilation": ("dilation", "dilated", "dilatation"),
    "chf": ("chf", "congestive heart failure", "heart failure"),
    "redistribution": ("redistribution", "cephalization"),
    "aspiration": ("aspiration",),
    "tail_abnorm_obs": (
        "granuloma",
        "granulomas",
        "granulomatous",
        "granulomatous infection",
        "granulomatous disease",
        "granulomatous process",
        "fibrosis",
        "fibrotic",
        "bronchiectasis",
        "cavitation",
        "cavity",
        "bulla",
        "bullae",
        "bullous",
        "bleb",
        "blebs",
        "cyst",
        "cysts",
        "lymphadenopathy",
        "adenopathy",
        "pneumomediastinum",
        "pneumoperitoneum",
        "sarcoidosis",
        "metastasis",
        "metastases",
        "kyphosis",
        "scoliosis",
        "osteopenia",
    ),
}
_unknown = set(FINDING_PHRASES) - set(PATHOLOGIES)
assert not _unknown, f"lexicon names unknown pathologies: {_unknown}"

#: Status words that, directly before another finding, only modify it ("stable cardiomegaly").
ADJECTIVAL_FINDINGS = frozenset(("stable", "stably"))

#: Observation words that describe size, change or status: the official pipeline files them under ``excluded_obs``.
EXCLUDED_OBSERVATIONS = frozenset(
    [
        "none",
        "unchanged",
        "change",
        "changes",
        "great",
        "greater",
        "similar",
        "large",
        "small",
        "moderate",
        "mild",
        "median",
        "decrease",
        "decreased",
        "bad",
        "worse",
        "more",
        "constant",
        "worsen",
        "worsened",
        "worsening",
        "new",
        "improve",
        "improved",
        "improvement",
        "status",
        "position",
        "sternotomy",
        "cabg",
        "replacement",
        "postoperative",
        "assessment",
        "patient",
    ]
)

# ------------------------------------------------------------------------------------------------- context cues
NEGATION_BEFORE = (
    "no",
    "not",
    "without",
    "nor",
    "neither",
    "negative for",
    "free of",
    "clear of",
    "absence of",
    "resolution of",
    "resolved",
    "lack of",
    "no longer",
    "never",
    "removal of",
    "interval removal of",
)
NEGATION_AFTER = (
    "not seen",
    "not identified",
    "not visualized",
    "not visualised",
    "not appreciated",
    "not present",
    "not demonstrated",
    "not evident",
    "not noted",
    "not detected",
    "not visible",
    "absent",
    "has resolved",
    "have resolved",
    "resolved",
    "ruled out",
    "has been removed",
    "have been removed",
    "removed",
    "no longer seen",
    "no longer present",
    "no longer visualized",
    "no longer evident",
    "no longer visible",
)
UNCERTAIN_BEFORE = (
    "possible",
    "possibly",
    "may",
    "might",
    "could",
    "questionable",
    "question of",
    "questioned",
    "?",
    "suspect",
    "suspected",
    "suspicious",
    "suspicion",
    "concern",
    "concerning",
    "cannot exclude",
    "can not exclude",
    "can't exclude",
    "cannot rule out",
    "can not rule out",
    "rule out",
    "r/o",
    "evaluate for",
    "evaluation for",
    "assess for",
    "assessment for",
    "equivocal",
    "indeterminate",
    "uncertain",
    "unclear",
    "suggest",
    "suggests",
    "suggesting",
    "suggestive",
    "differential",
    "borderline",
    "either",
    "cannot be excluded",
    "vs",
    "versus",
    "or less likely",
    "not exclude",
    "potentially",
    "potential",
    "perhaps",
    "conceivably",
    "consider",
    "considered",
    "worrisome",
    "possibility",
    "question",
    "sensitivity to detect",
    "sensitivity for",
    "to detect",
    "evaluation of",
    "assessment of",
    "evaluate",
    "assess",
    "mistaken for",
    "limits the evaluation of",
    "difficult to identify",
    "cannot be assessed",
    "not assessed",
)
UNCERTAIN_AFTER = tuple(
    f"{verb} {adverb}{outcome}".replace("  ", " ")
    for verb in ("cannot be", "can not be", "could not be", "not be", "not", "is not", "are not")
    for adverb in ("", "completely ", "entirely ", "definitely ", "totally ", "fully ", "confidently ")
    for outcome in ("excluded", "ruled out")
) + ("is possible", "are possible", "is suspected", "are suspected", "is questioned", "a consideration", "not excluded")
PROBABLE_BEFORE = ("likely", "probable", "probably", "most likely", "presumably", "presumed", "presumptive")
#: Phrases that look like negations but are not ("no change in the effusion").
PSEUDO_NEGATIONS = (
    "no change",
    "no significant change",
    "no interval change",
    "no appreciable change",
    "not changed",
    "no increase",
    "no decrease",
    "not only",
    "no significant interval change",
    "no definite change",
    "without change",
    "without interval change",
    "not significantly changed",
    "no substantial change",
    "not well seen",
    "not well visualized",
    "not well assessed",
    "not well evaluated",
    "not assessed",
    "not evaluated",
)
#: Words that end every context scope and every anatomy attachment.
TERMINATORS = (
    ";",
    "but",
    "however",
    "although",
    "though",
    "whereas",
    "which",
    "aside from",
    "apart from",
    "except",
    "otherwise",
    "there is",
    "there are",
    "there has been",
    "there have been",
    "there was",
    "there were",
    "there remains",
    "there remain",
)
#: Words between two findings that make the second inherit the first's location ("opacity ... consistent with X").
LINK_WORDS = frozenset(
    [
        "consistent",
        "compatible",
        "represent",
        "represents",
        "representing",
        "reflect",
        "reflects",
        "reflecting",
        "suggestive",
        "suggesting",
        "suggests",
        "suggest",
        "concerning",
        "suspicious",
        "due",
        "secondary",
        "related",
        "likely",
        "probably",
        "possibly",
        "presumably",
    ]
)
COPULAS = frozenset(
    [
        "is",
        "are",
        "was",
        "were",
        "remains",
        "remain",
        "remained",
        "appears",
        "appear",
        "appeared",
        "seems",
        "seem",
        "seemed",
        "looks",
        "look",
        "become",
        "becomes",
        "became",
    ]
)
PREPOSITIONS = frozenset(
    [
        "in",
        "at",
        "of",
        "within",
        "involving",
        "over",
        "overlying",
        "along",
        "throughout",
        "on",
        "near",
        "behind",
        "beneath",
        "above",
        "below",
        "into",
        "projecting",
        "adjacent",
        "abutting",
    ]
)
#: Words that may sit inside a noun phrase between an anatomy and its finding ("left small pleural effusion").
MODIFIERS = frozenset(
    [
        "the",
        "a",
        "an",
        "both",
        "small",
        "moderate",
        "large",
        "tiny",
        "trace",
        "minimal",
        "mild",
        "mildly",
        "moderately",
        "markedly",
        "severe",
        "severely",
        "slight",
        "slightly",
        "massive",
        "marked",
        "patchy",
        "linear",
        "dense",
        "focal",
        "subsegmental",
        "plate-like",
        "platelike",
        "discoid",
        "streaky",
        "bandlike",
        "band-like",
        "ill-defined",
        "hazy",
        "faint",
        "subtle",
        "layering",
        "loculated",
        "new",
        "acute",
        "chronic",
        "persistent",
        "residual",
        "airspace",
        "air-space",
        "alveolar",
        "interval",
        "increasing",
        "increased",
        "decreasing",
        "decreased",
        "worsening",
        "improving",
        "improved",
        "stable",
        "again",
        "otherwise",
        "now",
        "still",
        "somewhat",
        "more",
        "less",
        "further",
        "additional",
        "some",
        "mm",
        "cm",
        "approximately",
        "about",
        "partial",
        "partially",
        "complete",
        "near-complete",
        "early",
        "underlying",
        "associated",
        "adjacent",
        "scattered",
        "diffuse",
        "multifocal",
        "multiple",
        "several",
        "few",
        "numerous",
        "calcified",
        "well-circumscribed",
        "circumscribed",
        "rounded",
        "round",
        "irregular",
        "small-to-moderate",
        "moderate-to-large",
        "definite",
        "definitely",
        "frank",
        "overt",
        "significant",
        "appreciable",
        "gross",
        "grossly",
        "to",
        "amount",
        "amounts",
        "thoracic",
        "lumbar",
        "cervical",
        "volume",
        "area",
        "areas",
        "region",
        "regions",
        "component",
        "bibasal",
        "vague",
        "possible",
        "minor",
    ]
) | frozenset(str(n) for n in range(0, 100))

# -------------------------------------------------------------------------------------------------- anatomy
_SIDE = {
    "left": "left",
    "right": "right",
    "left-sided": "left",
    "right-sided": "right",
    "bilateral": "both",
    "bilaterally": "both",
    "both": "both",
    "bibasilar": "both",
    "bibasal": "both",
    "biapical": "both",
}
_LEVEL = {
    "upper": "upper",
    "mid": "mid",
    "middle": "mid",
    "midlung": "mid",
    "lower": "lower",
    "base": "lower",
    "bases": "lower",
    "basilar": "lower",
    "basal": "lower",
    "bibasilar": "lower",
    "bibasal": "lower",
    "infrahilar": "lower",
    "apex": "apical",
    "apices": "apical",
    "apical": "apical",
    "biapical": "apical",
}
_HEAD = {
    **dict.fromkeys(("lobe", "lobes"), "lobe"),
    **dict.fromkeys(
        (
            "lung",
            "lungs",
            "hemithorax",
            "hemithoraces",
            "zone",
            "zones",
            "field",
            "fields",
            "base",
            "bases",
            "apex",
            "apices",
        ),
        "lung",
    ),
    **dict.fromkeys(("lingula", "lingular"), "lingula"),
    **dict.fromkeys(("pleura", "pleural"), "pleural"),
    "costophrenic": "costophrenic",
    **dict.fromkeys(("hilum", "hila", "hilar", "perihilar", "hilus"), "hilar"),
    **dict.fromkeys(("diaphragm", "diaphragms", "hemidiaphragm", "hemidiaphragms", "diaphragmatic"), "diaphragm"),
    **dict.fromkeys(("heart", "cardiac"), "heart"),
    **dict.fromkeys(("cardiomediastinal", "mediastinum", "mediastinal", "cardiomediastinum"), "mediastinal"),
    "retrocardiac": "retrocardiac",
    "cardiophrenic": "cardiophrenic_sulcus",
    **dict.fromkeys(("trachea", "tracheal"), "trachea"),
    **dict.fromkeys(("spine", "spinal", "vertebra", "vertebrae", "vertebral", "spondylotic"), "spine"),
    **dict.fromkeys(("clavicle", "clavicles", "clavicular"), "clavicle"),
    **dict.fromkeys(("rib", "ribs"), "rib"),
    **dict.fromkeys(("stomach", "abdomen", "abdominal", "gastric"), "stomach"),
    **dict.fromkeys(("aorta", "aortic"), "aorta"),
    **dict.fromkeys(("svc", "cava"), "svc"),
    "cavoatrial": "cavoatrial_junction",
    **dict.fromkeys(("atrium", "atrial"), "atrium"),
    **dict.fromkeys(("ventricle", "ventricular"), "ventricle"),
    **dict.fromkeys(("interstitium", "interstitial"), "interstitium"),
    **dict.fromkeys(("parenchyma", "parenchymal"), "parenchymal"),
    "cardiopulmonary": "cardiopulmonary",
    "pulmonary": "pulmonary",
    **dict.fromkeys(("volume", "volumes"), "volumes"),
    **dict.fromkeys(
        (
            "subcutaneous",
            "soft",
            "tissue",
            "tissues",
            "neck",
            "shoulder",
            "shoulders",
            "humerus",
            "humeral",
            "sternum",
            "sternal",
            "thyroid",
            "carina",
            "bowel",
            "axilla",
            "axillary",
            "breast",
            "breasts",
            "scapula",
            "scapular",
            "wall",
            "thoracolumbar",
        ),
        "other",
    ),
}
#: Words that only complete an anatomy phrase ("costophrenic angle", "cardiac silhouette").
_FILLERS = frozenset(
    [
        "angle",
        "angles",
        "silhouette",
        "silhouettes",
        "contour",
        "contours",
        "size",
        "sulcus",
        "sulci",
        "junction",
        "superior",
        "vena",
        "border",
        "borders",
        "margin",
        "margins",
        "space",
        "spaces",
        "region",
        "segment",
        "segments",
    ]
)
ANATOMY_WORDS = frozenset(_SIDE) | frozenset(_LEVEL) | frozenset(_HEAD) | _FILLERS

_SIDED = {"pleural": "{}_pleural", "costophrenic": "{}_costophrenic", "hilar": "{}_hilar", "diaphragm": "{}_diaphragm"}
_UNSIDED = {
    "pleural": "pleural_unspec",
    "costophrenic": "costophrenic_unspec",
    "hilar": "hilar_unspec",
    "diaphragm": "diaphragm_unspec",
}
_HEAD_PRIORITY = (
    "mediastinal",
    "costophrenic",
    "cardiophrenic_sulcus",
    "retrocardiac",
    "heart",
    "pleural",
    "hilar",
    "diaphragm",
    "lingula",
    "lobe",
    "trachea",
    "spine",
    "clavicle",
    "rib",
    "stomach",
    "aorta",
    "svc",
    "cavoatrial_junction",
    "atrium",
    "ventricle",
    "interstitium",
    "parenchymal",
    "cardiopulmonary",
    "lung",
    "pulmonary",
    "volumes",
    "other",
)
_LOBES = {
    ("left", "upper"): "upper_left_lobe",
    ("left", "lower"): "lower_left_lobe",
    ("right", "upper"): "upper_right_lobe",
    ("right", "mid"): "middle_right_lobe",
    ("right", "lower"): "lower_right_lobe",
}
_ZONES = {"lower": "{}_lower_lung", "mid": "{}_mid_lung", "upper": "{}_upper_lung", "apical": "{}_apical_lung"}


def _sides(words: Sequence[str]) -> tuple[str, ...]:
    found = {_SIDE[w] for w in words if w in _SIDE}
    if "both" in found or found == {"left", "right"}:
        return ("left", "right")
    return tuple(found)


def _resolve_group(words: Sequence[str], default_head: str) -> list[str]:
    heads = {_HEAD[w] for w in words if w in _HEAD}
    levels = [_LEVEL[w] for w in words if w in _LEVEL]
    level = levels[0] if levels else None
    sides = _sides(words)
    head = next((h for h in _HEAD_PRIORITY if h in heads), None)
    if head is None:
        if level is None and not sides:
            return []
        head = "lung" if level is not None else default_head
    if head in _SIDED:
        return [_SIDED[head].format(s) for s in sides] if sides else [_UNSIDED[head]]
    if head == "heart":
        return ["heart_border"] if {"border", "borders"} & set(words) else ["heart_size"]
    if head == "lingula":
        return ["upper_left_lobe"]
    if head == "lobe":
        if level == "mid":
            return ["middle_right_lobe"]
        if len(sides) == 1 and level in ("upper", "lower"):
            return [_LOBES[(sides[0], level)]]
        if len(sides) == 2 and level in ("upper", "lower"):
            return [_LOBES[("left", level)], _LOBES[("right", level)]]
        if len(sides) == 1:
            return [f"{sides[0]}_lung_unspec"]
        head = "lung"
    if head == "lung":
        if len(sides) == 1:
            return [_ZONES[level].format(sides[0])] if level else [f"{sides[0]}_lung_unspec"]
        if level == "lower":
            return ["lung_bases"]
        if level in ("apical", "upper"):
            return ["lung_apices"]
        if len(sides) == 2:
            return ["left_lung_unspec", "right_lung_unspec"]
        return ["lung_volumes"] if "volumes" in heads else ["pulmonary"]
    if head == "atrium":
        return ["right_atrium"] if "right" in sides else ["other"]
    if head == "ventricle":
        return ["right_ventricle"] if "right" in sides else ["other"]
    if head == "volumes":
        return ["lung_volumes"]
    return [head]


def resolve_anatomy(words: Sequence[str], default_head: str = "lung") -> list[str]:
    """Anatomy entities named by a noun phrase's words, e.g. ``["left", "lower", "lobe"]`` -> ``["lower_left_lobe"]``.

    Groups joined by ``and``/``,`` that each name a structure resolve separately ("heart size and mediastinal
    contours"); a group with only a side lends it to the next ("left and right lower lobes"). ``bilateral`` names
    both sides, except at the bases and apices (``lung_bases``, ``lung_apices``). A phrase of sides alone takes
    ``default_head`` ("left effusion" -> pleural). Returns ``[]`` for words that name no place.
    """
    groups: list[list[str]] = [[]]
    for word in words:
        if word in ("and", ",", "or", "and/or", "/"):
            groups.append([])
        elif word in ANATOMY_WORDS:
            groups[-1].append(word)
    merged: list[list[str]] = []
    carry: list[str] = []
    for group in groups:
        if not group:
            continue
        if all(w in _SIDE for w in group):
            carry += group
            continue
        merged.append(carry + group)
        carry = []
    if carry:
        merged.append(carry) if not merged else merged[-1].extend(carry)
    names: list[str] = []
    for group in merged:
        for name in _resolve_group(group, default_head):
            if name not in names:
                names.append(name)
    assert all(n in ANATOMIES for n in names), names
    return names


_PHRASE_TO_PATHOLOGY = {phrase: name for name, phrases in FINDING_PHRASES.items() for phrase in phrases}


def observation_to_pathology(tokens: str) -> str:
    """Pathology entity of a RadGraph observation's text, as the official grouping does: a vocabulary name or
    synonym -> that name; a size/change/status word -> ``excluded_obs``; any other observation ->
    ``tail_abnorm_obs``."""
    text = " ".join(tokenize(tokens))
    if text in PATHOLOGIES:
        return text
    if text in _PHRASE_TO_PATHOLOGY:
        return _PHRASE_TO_PATHOLOGY[text]
    for suffix, replacement in (("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("d", ""), ("ing", "")):
        if text.endswith(suffix):
            stem = text[: -len(suffix)] + replacement
            if stem in PATHOLOGIES or stem in _PHRASE_TO_PATHOLOGY:
                return _PHRASE_TO_PATHOLOGY.get(stem, stem)
    if text in EXCLUDED_OBSERVATIONS:
        return "excluded_obs"
    return "tail_abnorm_obs"
