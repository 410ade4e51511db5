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
"""The MeDSLIP entity vocabulary: 75 pathologies and 51 anatomies.

Names and order are those of the official release, so official checkpoints and 51x75 matrices load unchanged
(the official dataset code spells ``disease`` and ``collapse``; its model file misspells them, which is harmless
because only the order matters). The descriptions and prompts are ours.
"""

from __future__ import annotations

__all__ = [
    "PATHOLOGIES",
    "DESCRIPTIVE_ENTITIES",
    "NON_LOCATIONS",
    "ANATOMIES",
    "PATHOLOGY_DESCRIPTIONS",
    "ANATOMY_PROMPTS",
    "LATERAL_ANATOMY_PAIRS",
    "UNPAIRED_SIDED_ANATOMIES",
    "ANATOMY_SIDES",
    "ANATOMY_ZONES",
    "ANATOMY_PROMPT_STYLES",
    "anatomy_prompts",
    "pathology_index",
    "anatomy_index",
]

PATHOLOGY_DESCRIPTIONS: dict[str, str] = {
    "normal": "Normal: the structure looks as expected on a chest radiograph with no abnormal finding.",
    "clear": "Clear lungs: the lung fields are dark and even with no added opacity, fluid or air outside the lung.",
    "sharp": "Sharp margins: a contour such as the diaphragm or heart border is crisply outlined, arguing against "
    "adjacent fluid or consolidation.",
    "sharply": "Sharply defined: an edge is well demarcated against the surrounding aerated lung.",
    "unremarkable": "Unremarkable: nothing of clinical concern is seen in the described structure.",
    "intact": "Intact: bones or devices are continuous, without fracture, break or disruption.",
    "stable": "Stable: the appearance is unchanged compared with a prior examination.",
    "free": "Free of disease: the region shows no abnormality, for example no free air or fluid.",
    "effusion": "Pleural effusion: fluid collects in the pleural space, seen as a dense opacity at the lung base that "
    "blunts the costophrenic angle and forms a curved meniscus rising along the chest wall.",
    "opacity": "Opacity: an area of the lung that appears whiter than normal because air is replaced or compressed "
    "by fluid, cells or tissue.",
    "pneumothorax": "Pneumothorax: air leaks into the pleural space and the lung collapses away from the chest wall; "
    "a thin white pleural line is seen with a dark region beyond it that has no lung markings, usually at the apex.",
    "edema": "Pulmonary edema: fluid accumulates in the lung interstitium and airspaces, giving hazy perihilar "
    "opacities in both lungs, thickened septal lines and indistinct vessels.",
    "atelectasis": "Atelectasis: part of the lung loses air and partly collapses, seen as a linear or plate-like band "
    "of opacity, often at the lung bases, with loss of volume.",
    "tube": "Tube: a medical tube such as an endotracheal, nasogastric, chest or feeding tube appears as a long "
    "radiopaque line whose tip position is assessed.",
    "consolidation": "Consolidation: the alveoli of a lung region fill with fluid, pus or cells, producing a dense "
    "ill-defined white area, often lobar, in which dark air-filled bronchi may stand out.",
    "process": "Process: a nonspecific pathologic process in the lung such as infection, inflammation or fluid.",
    "abnormality": "Abnormality: any finding that departs from normal chest anatomy.",
    "enlarge": "Enlargement: a structure such as the heart, hilum or mediastinum is larger than expected.",
    "tip": "Tip: the end of a line, tube or catheter, whose location is reported relative to anatomic landmarks.",
    "low": "Low lung volumes: shallow inspiration makes the lungs small and crowds the vessels at the bases.",
    "pneumonia": "Pneumonia: an infection of the lung causing focal or patchy airspace opacity or consolidation, "
    "sometimes with air bronchograms.",
    "line": "Line: a thin linear density, either a catheter or a linear scar or band of atelectasis.",
    "congestion": "Vascular congestion: the pulmonary vessels are engorged and their margins blurred because of "
    "raised venous pressure.",
    "catheter": "Catheter: a thin radiopaque tube placed in a vessel or cavity, such as a central venous catheter.",
    "cardiomegaly": "Cardiomegaly: the heart is enlarged, its silhouette wider than half of the thoracic diameter on a "
    "frontal radiograph.",
    "fracture": "Fracture: a break in a bone such as a rib, clavicle or vertebra, seen as a lucent line or a step in "
    "the cortex.",
    "air": "Air: gas where it does not belong, for example under the diaphragm, in the pleural space or soft tissue.",
    "tortuous": "Tortuous aorta: the thoracic aorta is elongated and curved, widening the mediastinal contour.",
    "lead": "Lead: a pacemaker or defibrillator wire running through the veins into the heart.",
    "disease": "Disease: a pathologic condition of the lungs, pleura, heart or bones visible on the radiograph.",
    "calcification": "Calcification: calcium deposits that appear very bright, in vessels, lymph nodes, granulomas or "
    "the pleura.",
    "prominence": "Prominence: a structure such as the hilum, vessels or mediastinum appears more conspicuous than "
    "usual.",
    "device": "Device: an implanted or external medical device projecting over the chest.",
    "engorgement": "Engorgement: distended pulmonary or mediastinal vessels filled with blood.",
    "picc": "PICC line: a peripherally inserted central catheter entering from the arm, its tip ideally in the lower "
    "superior vena cava.",
    "clip": "Surgical clip: a small metallic clip left after surgery, seen as a tiny very bright object.",
    "elevation": "Elevation: a hemidiaphragm sits higher than expected, from volume loss, paralysis or a process below.",
    "expand": "Expansion: the lung is fully or better expanded, or a structure has increased in size.",
    "nodule": "Nodule: a small round well-circumscribed opacity within the lung, up to three centimetres across.",
    "wire": "Wire: a thin metallic wire such as sternotomy wires or a pacing wire.",
    "fluid": "Fluid: liquid collecting in the pleural space, fissures or airspaces.",
    "degenerative": "Degenerative change: wear of the spine or joints with osteophytes and narrowed disc spaces.",
    "pacemaker": "Pacemaker: a cardiac pacing generator in the chest wall with leads running into the heart.",
    "thicken": "Thickening: pleural or bronchial walls appear thicker than normal.",
    "marking": "Lung markings: the branching vessels and interstitium visible within the lungs, which may be "
    "increased or coarsened.",
    "scar": "Scar: fibrotic tissue left by previous injury or infection, seen as linear or irregular opacity.",
    "hyperinflate": "Hyperinflation: the lungs are over-expanded with flattened diaphragms, as in obstructive disease.",
    "blunt": "Blunting: the sharp costophrenic angle is rounded off, usually by a small pleural effusion or thickening.",
    "loss": "Volume loss: a lung or lobe is smaller, pulling fissures, the hilum or mediastinum toward it.",
    "widen": "Widening: the mediastinum or another structure is wider than expected.",
    "collapse": "Collapse: a lobe or the whole lung has lost its air and shrunk into a dense opacity.",
    "density": "Density: a focal area of increased attenuation in the lung or mediastinum.",
    "emphysema": "Emphysema: destruction of alveolar walls leaves enlarged airspaces, hyperlucent lungs and flat "
    "diaphragms.",
    "aerate": "Aeration: how well a lung region is filled with air; poor aeration gives opacity.",
    "mass": "Mass: a lung or mediastinal opacity larger than three centimetres, suspicious for tumour.",
    "crowd": "Crowding: vessels or bronchi lie close together because of low volumes or collapse.",
    "infiltrate": "Infiltrate: ill-defined opacity from material filling the airspaces or interstitium.",
    "obscure": "Obscured: a normal border such as the heart or diaphragm is hidden by an adjacent opacity.",
    "deformity": "Deformity: an abnormal shape of a bone or the chest wall, often from a healed fracture.",
    "hernia": "Hernia: abdominal contents such as the stomach pass through the diaphragm into the chest, often "
    "behind the heart.",
    "drainage": "Drainage: a drain or chest tube placed to remove fluid or air from the pleural space.",
    "distention": "Distention: a hollow structure such as the stomach or bowel is dilated with gas.",
    "shift": "Shift: the mediastinum or trachea is displaced toward or away from one side.",
    "stent": "Stent: a tubular metallic mesh placed in a vessel or airway.",
    "pressure": "Pressure: raised pressure such as in the pulmonary veins, or pressure effect on nearby structures.",
    "lesion": "Lesion: a focal abnormality of the lung, pleura or bone.",
    "finding": "Finding: an observation reported on the chest radiograph.",
    "borderline": "Borderline: a measurement at the upper limit of normal, such as borderline heart size.",
    "hardware": "Hardware: orthopaedic or surgical metal such as screws, plates or rods.",
    "dilation": "Dilation: a vessel, airway or cardiac chamber is wider than normal.",
    "chf": "Congestive heart failure: an enlarged heart with vascular congestion, interstitial edema and effusions.",
    "redistribution": "Redistribution: upper-lobe vessels become prominent as pulmonary venous pressure rises.",
    "aspiration": "Aspiration: inhaled material causes opacity in dependent lung segments.",
    "tail_abnorm_obs": "Other abnormality: a rare abnormal observation such as fibrosis.",
    "excluded_obs": "Other observation: a rare observation outside the main list.",
}

PATHOLOGIES: tuple[str, ...] = tuple(PATHOLOGY_DESCRIPTIONS)

#: Pathology entities that describe normality or stability rather than a finding to locate, plus the bin of excluded
#: observations; inference reports their probabilities but draws and locates none of them.
DESCRIPTIVE_ENTITIES: tuple[str, ...] = (
    "normal",
    "clear",
    "sharp",
    "sharply",
    "unremarkable",
    "intact",
    "stable",
    "free",
    "excluded_obs",
)

_ANATOMY_PLACES: dict[str, str] = {
    "trachea": "the trachea, the midline airway above the carina",
    "left_hilar": "the left hilum, where vessels and bronchi enter the left lung",
    "right_hilar": "the right hilum, where vessels and bronchi enter the right lung",
    "hilar_unspec": "the hila of the lungs",
    "left_pleural": "the left pleural space around the left lung",
    "right_pleural": "the right pleural space around the right lung",
    "pleural_unspec": "the pleural space",
    "heart_size": "the heart, judged by the width of the cardiac silhouette",
    "heart_border": "the border of the cardiac silhouette",
    "left_diaphragm": "the left hemidiaphragm",
    "right_diaphragm": "the right hemidiaphragm",
    "diaphragm_unspec": "the diaphragm",
    "retrocardiac": "the retrocardiac region behind the heart",
    "lower_left_lobe": "the left lower lobe",
    "upper_left_lobe": "the left upper lobe",
    "lower_right_lobe": "the right lower lobe",
    "middle_right_lobe": "the right middle lobe",
    "upper_right_lobe": "the right upper lobe",
    "left_lower_lung": "the lower zone of the left lung",
    "left_mid_lung": "the middle zone of the left lung",
    "left_upper_lung": "the upper zone of the left lung",
    "left_apical_lung": "the apex of the left lung",
    "left_lung_unspec": "the left lung",
    "right_lower_lung": "the lower zone of the right lung",
    "right_mid_lung": "the middle zone of the right lung",
    "right_upper_lung": "the upper zone of the right lung",
    "right_apical_lung": "the apex of the right lung",
    "right_lung_unspec": "the right lung",
    "lung_apices": "the apices of both lungs",
    "lung_bases": "the bases of both lungs",
    "left_costophrenic": "the left costophrenic angle",
    "right_costophrenic": "the right costophrenic angle",
    "costophrenic_unspec": "the costophrenic angles",
    "cardiophrenic_sulcus": "the cardiophrenic sulcus between heart and diaphragm",
    "mediastinal": "the mediastinum",
    "spine": "the thoracic spine",
    "clavicle": "the clavicle",
    "rib": "the ribs",
    "stomach": "the stomach below the left hemidiaphragm",
    "right_atrium": "the right atrium",
    "right_ventricle": "the right ventricle",
    "aorta": "the aorta",
    "svc": "the superior vena cava",
    "interstitium": "the lung interstitium",
    "parenchymal": "the lung parenchyma",
    "cavoatrial_junction": "the cavoatrial junction",
    "cardiopulmonary": "the heart and lungs",
    "pulmonary": "the lungs",
    "lung_volumes": "the lung volumes",
    "unspecified": "an unspecified location in the chest",
    "other": "another location in the chest",
}

#: Anatomy entities that name no place; never reported as a finding's location.
NON_LOCATIONS: tuple[str, ...] = ("unspecified", "other")

ANATOMY_PROMPTS: dict[str, str] = {name: f"Located at {place}." for name, place in _ANATOMY_PLACES.items()}
ANATOMIES: tuple[str, ...] = tuple(ANATOMY_PROMPTS)

#: Anatomies that trade places when an image is mirrored left to right.
LATERAL_ANATOMY_PAIRS: tuple[tuple[str, str], ...] = (
    ("left_hilar", "right_hilar"),
    ("left_pleural", "right_pleural"),
    ("left_diaphragm", "right_diaphragm"),
    ("lower_left_lobe", "lower_right_lobe"),
    ("upper_left_lobe", "upper_right_lobe"),
    ("left_lower_lung", "right_lower_lung"),
    ("left_mid_lung", "right_mid_lung"),
    ("left_upper_lung", "right_upper_lung"),
    ("left_apical_lung", "right_apical_lung"),
    ("left_lung_unspec", "right_lung_unspec"),
    ("left_costophrenic", "right_costophrenic"),
)

#: Anatomies with one side only: a mirrored image that mentions them has no valid label.
UNPAIRED_SIDED_ANATOMIES: tuple[str, ...] = (
    "middle_right_lobe",
    "retrocardiac",
    "stomach",
    "aorta",
    "svc",
    "right_atrium",
    "right_ventricle",
    "cavoatrial_junction",
)

_UNPAIRED_SIDES = {"middle_right_lobe": "right", "retrocardiac": "left", "stomach": "left", "aorta": "left"}
_UNPAIRED_SIDES.update(svc="right", right_atrium="right", cavoatrial_junction="right")
#: The patient's side of each anatomy that has one (None: midline, both sides or no side). A frontal radiograph
#: shows the patient's right on the image's left.
ANATOMY_SIDES: dict[str, str | None] = {
    name: next(
        (side for pair in LATERAL_ANATOMY_PAIRS for side, member in zip(("left", "right"), pair) if member == name),
        _UNPAIRED_SIDES.get(name),
    )
    for name in ANATOMIES
}
_ZONE_WORDS = {
    "upper": ("apical", "upper", "apices"),
    "mid": ("mid_lung", "middle", "hilar"),
    "lower": ("lower", "costophrenic", "bases", "diaphragm", "cardiophrenic", "retrocardiac", "stomach"),
}
#: The lung zone (``"upper"``, ``"mid"``, ``"lower"``) of each anatomy that lies in one, else None.
ANATOMY_ZONES: dict[str, str | None] = {
    name: next((zone for zone, words in _ZONE_WORDS.items() if any(word in name for word in words)), None)
    for name in ANATOMIES
}
_SIDE_ORGANS = {
    "left": "on the patient's left, the side of the heart",
    "right": "on the patient's right, the side of the liver",
}
#: Anatomy prompt styles: ``"default"`` (``ANATOMY_PROMPTS``) or ``"sided"`` (see :func:`anatomy_prompts`).
ANATOMY_PROMPT_STYLES = ("default", "sided")


def anatomy_prompts(style: str = "default") -> dict[str, str]:
    """The anatomy prompts in a ``style``: ``"default"`` (ours) or ``"sided"``, where each one-sided place is also
    named by the organ on its side (the heart on the patient's left, the liver on the right). Text encoders hardly
    tell "left" from "right": with MiniLM the mean cosine between mirror prompts is 0.98 (0.63 between other
    anatomies), 0.89 once the organs are named."""
    if style not in ANATOMY_PROMPT_STYLES:
        raise ValueError(f"anatomy prompt style {style!r} is not one of {ANATOMY_PROMPT_STYLES}")
    if style == "default":
        return dict(ANATOMY_PROMPTS)
    sided = {}
    for name, place in _ANATOMY_PLACES.items():
        side = ANATOMY_SIDES[name]
        sided[name] = f"Located at {place}, {_SIDE_ORGANS[side]}." if side else ANATOMY_PROMPTS[name]
    return sided


_PATHOLOGY_INDEX = {name: i for i, name in enumerate(PATHOLOGIES)}
_ANATOMY_INDEX = {name: i for i, name in enumerate(ANATOMIES)}


def _index(table: dict[str, int], kind: str, name: str) -> int:
    if name not in table:
        raise KeyError(f"unknown {kind} entity {name!r}; expected one of the {len(table)} names in medslip_monai.vocab")
    return table[name]


def pathology_index(name: str) -> int:
    """Index of a pathology entity; raises ``KeyError`` naming the unknown entity."""
    return _index(_PATHOLOGY_INDEX, "pathology", name)


def anatomy_index(name: str) -> int:
    """Index of an anatomy entity; raises ``KeyError`` naming the unknown entity."""
    return _index(_ANATOMY_INDEX, "anatomy", name)
