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
"""RadGraph annotations (``MIMIC-CXR_graphs.json``, the file the official preprocessing reads) to triplets.

The semantics follow the official chain (itemise -> parse -> adjacency matrix): an observation ``located_at`` an
anatomy takes that anatomy (with the anatomy words that modify it, e.g. "left" "lower" -> "lobe"); an observation
with no relation at all is ``unspecified``; an observation whose only relations are ``modify``/``suggestive_of``
is a modifier and is dropped. ``OBS-DP`` -> 1, ``OBS-DA`` -> 0, ``OBS-U`` -> the uncertainty policy. Observation
words are grouped into the 75 pathologies by the extractor's lexicon (rare abnormal ones -> ``tail_abnorm_obs``,
size/change words -> ``excluded_obs``) and anatomy words resolved by ``resolve_anatomy`` (unresolved -> ``other``).

Time is linear in the annotation (the heads of ``modify`` chains are found in one pass), a file is read up to
``MAX_RADGRAPH_BYTES``, and a malformed report annotation is a problem naming its key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from medslip_monai.reports.corpora import Problem
from medslip_monai.reports.extract import UNCERTAIN_POLICIES
from medslip_monai.reports.lexicon import observation_to_pathology, resolve_anatomy, tokenize
from medslip_monai.vocab import anatomy_index, pathology_index

__all__ = ["radgraph_triplets", "load_radgraph", "radgraph_study_key", "MAX_RADGRAPH_BYTES"]

#: Bytes of a RadGraph JSON file, which is parsed whole (the standard library has no streaming JSON parser).
MAX_RADGRAPH_BYTES = 4 * 2**30
#: Errors of a report annotation of the wrong shape.
_MALFORMED = (KeyError, TypeError, AttributeError, ValueError, IndexError)

_STATUS = {
    "OBS-DP": "present",
    "OBS-DA": "absent",
    "OBS-U": "uncertain",
    "Observation::definitely present": "present",
    "Observation::definitely absent": "absent",
    "Observation::uncertain": "uncertain",
}
_ANATOMY_LABELS = ("ANAT-DP", "Anatomy::definitely present")


def _entities(annotation: dict) -> dict:
    if "entities" in annotation:
        return annotation["entities"]
    labelers = sorted(k for k in annotation if k.startswith("labeler_"))
    if labelers:  # the RadGraph dev/test sets carry one graph per annotator: take the first
        return annotation[labelers[0]]["entities"]
    raise KeyError("annotation has neither 'entities' nor 'labeler_*' graphs")


def _roots(entities: dict) -> dict[str, str]:
    """The head anatomy of every anatomy entity: ``modify`` relations between anatomy entities followed ("left" ->
    "lobe") to one without any, or, in a cycle, to the entity before the first one met again. One pass over the
    chains (following each chain from each entity costs quadratic time on long ones)."""
    step: dict[str, str | None] = {}  # the first anatomy an anatomy entity modifies
    for key, entity in entities.items():
        if entity.get("label") in _ANATOMY_LABELS:
            targets = [
                t
                for rel, t in entity.get("relations", []) or []
                if rel == "modify" and t in entities and entities[t]["label"] in _ANATOMY_LABELS
            ]
            step[key] = targets[0] if targets else None
    roots: dict[str, str] = {}
    for start in step:
        path: list[str] = []
        index: dict[str, int] = {}
        node = start
        while True:
            if node in roots:  # a chain met before: the same head
                root = roots[node]
                break
            if node in index:  # a cycle: each of its entities ends at the one before it, the chain into it too
                cycle = path[index[node] :]
                for i, entity_id in enumerate(cycle):
                    roots[entity_id] = cycle[i - 1]
                root = cycle[-1]
                path = path[: index[node]]
                break
            index[node] = len(path)
            path.append(node)
            if step[node] is None:
                root = node
                break
            node = step[node]
        for entity_id in path:
            roots[entity_id] = root
    return roots


def radgraph_triplets(annotation: dict, uncertain: str = "ignore") -> list[tuple[str, str, int]]:
    """Triplets ``[(anatomy, pathology, 1|0), ...]`` of one RadGraph report annotation (vocabulary order)."""
    if uncertain not in UNCERTAIN_POLICIES:
        raise ValueError(f"uncertain={uncertain!r}; expected one of {UNCERTAIN_POLICIES}")
    entities = _entities(annotation)
    roots = _roots(entities)
    anatomy_words: dict[str, list[str]] = {}
    for key, entity in entities.items():
        if entity.get("label") in _ANATOMY_LABELS:
            anatomy_words.setdefault(roots[key], []).extend(tokenize(entity.get("tokens", "")))
    places = {root: resolve_anatomy(words) or ["other"] for root, words in anatomy_words.items()}
    values: dict[tuple[str, str], int] = {}
    for entity in entities.values():
        status = _STATUS.get(entity.get("label"))
        if status is None:
            continue
        if status == "uncertain":
            if uncertain == "ignore":
                continue
            value = int(uncertain == "positive")
        else:
            value = int(status == "present")
        relations = [(rel, target) for rel, target in entity.get("relations", []) or [] if target in entities]
        located = [t for rel, t in relations if rel == "located_at" and entities[t]["label"] in _ANATOMY_LABELS]
        if located:
            anatomies = [name for t in located for name in places[roots[t]]]
        elif not relations:
            anatomies = ["unspecified"]
        else:
            continue
        pathology = observation_to_pathology(entity.get("tokens", ""))
        for anatomy in anatomies:
            values[(anatomy, pathology)] = max(values.get((anatomy, pathology), 0), value)
    order = sorted(values, key=lambda k: (anatomy_index(k[0]), pathology_index(k[1])))
    return [(a, p, values[(a, p)]) for a, p in order]


def radgraph_study_key(key: str) -> tuple[str, str]:
    """``"p10/p10000032/s50414267.txt"`` -> ``("10000032", "50414267")`` (subject id, study id)."""
    parts = Path(key).with_suffix("").parts
    if len(parts) < 2 or not parts[-1].startswith("s") or not parts[-2].startswith("p"):
        raise ValueError(f"RadGraph key {key!r} is not of the form pXX/pSUBJECT/sSTUDY.txt")
    return parts[-2][1:], parts[-1][1:]


def load_radgraph(
    path: str | os.PathLike, uncertain: str = "ignore", problems: list[Problem] | None = None
) -> dict[str, list[tuple[str, str, int]]]:
    """Triplets of every report in a RadGraph JSON file, keyed as in the file. A malformed report annotation
    raises ``ValueError`` naming the key, or, given a ``problems`` list, is appended to it (as ``file!key``) and
    left out. ``ValueError`` for a file that cannot be read, is larger than ``MAX_RADGRAPH_BYTES`` or is not an
    object keyed by report."""
    if uncertain not in UNCERTAIN_POLICIES:
        raise ValueError(f"uncertain={uncertain!r}; expected one of {UNCERTAIN_POLICIES}")
    try:
        with open(path, "rb") as handle:
            content = handle.read(MAX_RADGRAPH_BYTES + 1)
        if len(content) > MAX_RADGRAPH_BYTES:
            raise ValueError(f"larger than {MAX_RADGRAPH_BYTES:,} bytes")
        data = json.loads(content.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise ValueError(f"RadGraph file {path}: cannot read JSON ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"RadGraph file {path}: expected an object keyed by report, got {type(data).__name__}")
    result = {}
    for key, annotation in data.items():
        try:
            result[key] = radgraph_triplets(annotation, uncertain)
        except _MALFORMED as e:
            reason = f"malformed annotation ({e!r})"
            if problems is None:
                raise ValueError(f"RadGraph file {path}, report {key!r}: {reason}") from None
            problems.append(Problem(f"{path}!{key}", reason))
    return result
