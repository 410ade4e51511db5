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
"""Free-text chest X-ray reports to (anatomy, pathology, 1|0) triplets over the MeDSLIP vocabulary.

A rule-based extractor in the spirit of NegEx/ConText, written for speed (thousands of reports per second on one
core) and for the 51 x 75 matrix: sections -> sentences -> tokens matched against the lexicon -> context scopes
(negation, uncertainty, "likely") closed by terminators -> each finding attached to the anatomy phrase before it,
after a preposition, or as the subject of "is/are" -> rewrite rules -> triplets. See ``docs/report_extraction.md``.

Hostile text costs linear time and memory: every regular expression below runs in time linear in its input (each
is commented with why), every step after them is linear in the tokens, and a report longer than ``max_chars``
(default ``MAX_REPORT_CHARS``, ten times the longest real reports) is truncated to its first ``max_chars``
characters with a warning. Sentences and mentions are not capped: a cap there would change labels silently, and
the report cap already bounds them.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from functools import lru_cache

from medslip_monai.reports import lexicon as lx
from medslip_monai.vocab import anatomy_index, pathology_index

__all__ = [
    "Mention",
    "ReportExtractor",
    "extract_triplets",
    "split_sections",
    "split_sentences",
    "UNCERTAIN_POLICIES",
    "MAX_REPORT_CHARS",
]

logger = logging.getLogger(__name__)

UNCERTAIN_POLICIES = ("ignore", "positive", "negative")
#: Characters of a report read by default; real chest X-ray reports are under 10,000.
MAX_REPORT_CHARS = 100_000

#: Sections used when the report has a FINDINGS or IMPRESSION section.
PREFERRED_SECTIONS = ("findings", "impression")
#: Sections never read (they state why the study was done, not what it shows).
SKIPPED_SECTIONS = (
    "indication",
    "indications",
    "history",
    "clinical history",
    "clinical information",
    "clinical indication",
    "reason for exam",
    "reason for examination",
    "reason for study",
    "comparison",
    "comparisons",
    "technique",
    "examination",
    "exam",
    "procedure",
    "notification",
    "recommendation",
    "recommendations",
    "addendum",
)
_SECTION_ALIASES = {
    "finding": "findings",
    "findings and impression": "findings",
    "impressions": "impression",
    "conclusion": "impression",
    "conclusions": "impression",
    "opinion": "impression",
    "summary": "impression",
}
# A header ``LABEL:`` starts the text, a line, a sentence (". ") or follows two blanks: a label of 2 to 41 characters
# (letters, blanks, "/&()-") then blanks and a colon not before a digit. The first version began with lookbehinds
# and ``\s*``, so each blank of a run started a match attempt that read the rest of the run: quadratic on runs of
# blanks (20,000 newlines took 10 s). Here a match starts only where a run of blanks starts (``(?<!\s)``), so a
# run is read a bounded number of times, and the label ends at a non-blank character (or is a letter and one
# blank), so the blanks before the colon are read once per label end, not once per label length: linear time
# (no possessive quantifiers, which Python 3.10 lacks). ``split_sections`` gives the sections of the first version.
_HEADER = re.compile(
    r"(?:\A\s*|(?<!\s)(?:\s\s\s*|\n|(?<=\.)\s))([A-Za-z](?:[A-Za-z /&()-]{0,39}[A-Za-z/&()-]| ))\s*:(?!\d)"
)
# Sentence ends, blank lines and line-initial list markers: linear as they are (a blank line's ``\s*`` reaches
# the last newline of its run at once; the list-marker look-ahead runs only at the last newline of a run).
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n\s*\n|\n(?=\s*(?:\d{1,2}[.)]|[-*\u2022])\s)")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_ENUMERATOR = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*\u2022])\s+")

# kinds of matched items
_FINDING, _ANAT, _MOD, _CONJ, _COP, _PREP, _TERM, _OTHER = "F", "A", "M", "C", "V", "P", "T", "O"
_NEG_PRE, _NEG_POST, _UNC_PRE, _UNC_POST, _PROB_PRE, _PSEUDO = "n<", "n>", "u<", "u>", "p<", "x"
_CUES = (_NEG_PRE, _NEG_POST, _UNC_PRE, _UNC_POST, _PROB_PRE)


def _phrase_table() -> dict[str, list[tuple[int, dict[tuple[str, ...], tuple[str, str]]]]]:
    """First token -> [(length, {tokens: (kind, payload)})], longest first; later tables win ties."""
    entries: dict[tuple[str, ...], tuple[str, str]] = {}
    for name, phrases in lx.FINDING_PHRASES.items():
        for phrase in phrases:
            entries[tuple(lx.tokenize(phrase))] = (_FINDING, name)
    for kind, phrases in (
        (_NEG_PRE, lx.NEGATION_BEFORE),
        (_NEG_POST, lx.NEGATION_AFTER),
        (_UNC_PRE, lx.UNCERTAIN_BEFORE),
        (_UNC_POST, lx.UNCERTAIN_AFTER),
        (_PROB_PRE, lx.PROBABLE_BEFORE),
        (_PSEUDO, lx.PSEUDO_NEGATIONS),
        (_TERM, lx.TERMINATORS),
    ):
        for phrase in phrases:
            tokens = tuple(lx.tokenize(phrase))
            if tokens in entries and entries[tokens][0] == _FINDING:  # "borderline": a finding that also hedges
                entries[tokens] = (_FINDING + kind, entries[tokens][1])
            else:
                entries[tokens] = (kind, phrase)
    by_length: dict[str, dict[int, dict]] = {}
    for tokens, value in entries.items():
        by_length.setdefault(tokens[0], {}).setdefault(len(tokens), {})[tokens] = value
    return {first: sorted(lengths.items(), reverse=True) for first, lengths in by_length.items()}


_TABLE = _phrase_table()


def _word_kind(word: str) -> str:
    if word in lx.ANATOMY_WORDS:
        return _ANAT
    if word in ("and", "or", ",", "and/or", "/"):
        return _CONJ
    if word in lx.MODIFIERS:
        return _MOD
    if word in lx.COPULAS:
        return _COP
    if word in lx.PREPOSITIONS:
        return _PREP
    return _OTHER


@dataclass(slots=True)
class _Item:
    kind: str
    start: int  # first token
    end: int  # one past the last token
    payload: str


class _LinkWords:
    """Whether a link word ("consistent", "represents", ...) lies between two token positions of a sentence, in
    constant time after one pass over the tokens (made on first use)."""

    __slots__ = ("tokens", "counts")

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.counts: list[int] | None = None

    def between(self, start: int, end: int) -> bool:
        """True when ``tokens[start:end]`` holds a link word."""
        if self.counts is None:
            counts, total = [0], 0
            for token in self.tokens:
                total += token in lx.LINK_WORDS
                counts.append(total)
            self.counts = counts
        return start < end and self.counts[end] > self.counts[start]


def _add_cue(cues: list[str], cue: str) -> None:
    """Append ``cue`` unless present: a finding's status reads only its first cue and which cues it has."""
    if cue not in cues:
        cues.append(cue)


@dataclass
class Mention:
    """One finding mention: its pathology, the anatomies it is located at, and its status."""

    pathology: str
    anatomies: list[str]
    status: str  # "present", "absent", "uncertain"
    sentence: str = field(default="", repr=False)


def split_sections(text: str) -> dict[str, str]:
    """``{"findings": ..., "impression": ..., ...}`` from ``HEADER:`` labels; text before any header is ``""``."""
    parts: dict[str, list[str]] = {}  # joined at the end: repeated headers cost linear time, not quadratic
    matches = [
        m
        for m in _HEADER.finditer(text)
        if m.group(1).strip().upper() == m.group(1).strip()
        or m.group(1).strip().lower() in PREFERRED_SECTIONS + SKIPPED_SECTIONS
    ]
    starts = [0] + [m.end() for m in matches]
    names = [""] + [" ".join(m.group(1).lower().split()) for m in matches]
    ends = [m.start() for m in matches] + [len(text)]
    for name, start, end in zip(names, starts, ends):
        name = _SECTION_ALIASES.get(name, name)
        body = text[start:end].strip()
        if name in SKIPPED_SECTIONS:  # "INDICATION: ...\n\nunlabelled findings": the paragraph break ends it
            body, *rest = _PARAGRAPH_BREAK.split(body, maxsplit=1)
            if rest and rest[0].strip():
                parts.setdefault("", []).append(rest[0].strip())
        if body:
            parts.setdefault(name, []).append(body)
    return {name: "\n".join(bodies) for name, bodies in parts.items()}


def split_sentences(text: str) -> list[str]:
    """Sentences of a section; list numbering ("1.", "-") is dropped."""
    sentences = (_ENUMERATOR.sub("", s).strip() for s in _SENTENCE_BREAK.split(text))
    return [s for s in sentences if s]


def _scan(tokens: list[str]) -> list[_Item]:
    """Lexicon items of a sentence's tokens, the longest phrase first (one lookup per phrase length)."""
    items, i = [], 0
    while i < len(tokens):
        for length, phrases in _TABLE.get(tokens[i], ()):
            found = phrases.get(tuple(tokens[i : i + length]))
            if found is not None:
                items.append(_Item(found[0], i, i + length, found[1]))
                i += length
                break
        else:
            items.append(_Item(_word_kind(tokens[i]), i, i + 1, tokens[i]))
            i += 1
    return items


class ReportExtractor:
    """Callable turning report text into triplets ``[(anatomy, pathology, 1|0), ...]`` (vocabulary order).

    Args:
        uncertain: what an uncertain mention ("possible effusion", "cannot exclude pneumonia") becomes:
            ``"ignore"`` (left unmentioned, -1 in the matrix; the default, as RadGraph's ``OBS-U`` is in the
            official matrices), ``"positive"`` (1) or ``"negative"`` (0).
        likely_is_positive: mentions hedged only by "likely"/"probable" count as present (True, the default) or
            as uncertain.
        sections: sections to read when the report has any of them; otherwise every section but the skipped ones
            (indication, history, comparison, technique, ...) is read.
        max_chars: a longer report is read only up to this many characters, with a warning (``None``: no limit;
            the time and memory spent stay linear in the length either way).
    """

    def __init__(
        self,
        uncertain: str = "ignore",
        likely_is_positive: bool = True,
        sections: tuple[str, ...] = PREFERRED_SECTIONS,
        max_chars: int | None = MAX_REPORT_CHARS,
    ) -> None:
        if uncertain not in UNCERTAIN_POLICIES:
            raise ValueError(f"uncertain={uncertain!r}; expected one of {UNCERTAIN_POLICIES}")
        if max_chars is not None and max_chars < 1:
            raise ValueError(f"max_chars={max_chars!r}; expected a positive number of characters or None")
        self.uncertain = uncertain
        self.likely_is_positive = likely_is_positive
        self.sections = tuple(sections)
        self.max_chars = max_chars

    # ------------------------------------------------------------------------------------------- public API
    def __call__(self, text: str) -> list[tuple[str, str, int]]:
        values: dict[tuple[str, str], int] = {}
        for mention in self.mentions(text):
            value = {"present": 1, "absent": 0}.get(mention.status)
            if value is None:
                if self.uncertain == "ignore":
                    continue
                value = 1 if self.uncertain == "positive" else 0
            for anatomy in mention.anatomies:
                key = (anatomy, mention.pathology)
                values[key] = max(values.get(key, 0), value)
        order = sorted(values, key=lambda k: (anatomy_index(k[0]), pathology_index(k[1])))
        return [(a, p, values[(a, p)]) for a, p in order]

    def mentions(self, text: str) -> list[Mention]:
        """Every finding mention of the report's selected sections."""
        if not isinstance(text, str):
            raise TypeError(f"report text must be a string, got {type(text).__name__}")
        found: list[Mention] = []
        for sentence in self.sentences(text):
            found.extend(self.sentence_mentions(sentence))
        return found

    def sentences(self, text: str) -> list[str]:
        """The sentences read from the report (selected sections, in order; the first ``max_chars`` characters)."""
        if self.max_chars is not None and len(text) > self.max_chars:
            logger.warning(
                "a report of %d characters is read only up to its first %d (max_chars; real reports are under 10,000)",
                len(text),
                self.max_chars,
            )
            text = text[: self.max_chars]
        sections = split_sections(text)
        if self.sections and self.sections[0] in sections:
            chosen = [body for name, body in sections.items() if name in self.sections]
        else:  # no FINDINGS section: read everything but the indication, history, comparison, ...
            chosen = [body for name, body in sections.items() if name not in SKIPPED_SECTIONS]
        return [s for body in chosen for s in split_sentences(body)]

    def sentence_mentions(self, sentence: str) -> list[Mention]:
        """Finding mentions of one sentence."""
        tokens = lx.tokenize(sentence)
        items = _scan(tokens)
        links = _LinkWords(tokens)
        mentions: list[Mention] = []
        segment: list[_Item] = []
        for item in items + [_Item(_TERM, len(tokens), len(tokens), "")]:
            if item.kind == _TERM:
                mentions.extend(self._segment_mentions(segment, tokens, sentence, links))
                segment = []
            else:
                segment.append(item)
        return mentions

    # ------------------------------------------------------------------------------------------ internals
    def _segment_mentions(
        self, items: list[_Item], tokens: list[str], sentence: str, links: _LinkWords
    ) -> list[Mention]:
        findings = [i for i, it in enumerate(items) if it.kind.startswith(_FINDING)]
        if not findings:
            return []
        cues = self._cues(items, findings)
        located = self._places(items, findings, links)
        mentions = []
        for f in findings:
            nxt = f + 1
            while nxt < len(items) and items[nxt].kind == _MOD:
                nxt += 1
            word = " ".join(tokens[items[f].start : items[f].end])
            if word in lx.ADJECTIVAL_FINDINGS and nxt < len(items) and items[nxt].kind.startswith(_FINDING):
                continue  # "stable cardiomegaly": a status word modifying the next finding is not a finding
            anatomies, pathology, status = located[f], items[f].payload, self._status(cues[f])
            if pathology == "enlarge" and "heart_size" in anatomies:
                pathology = "cardiomegaly"
            elif pathology == "fluid" and any("pleural" in a or "costophrenic" in a for a in anatomies):
                pathology = "effusion"
            mentions.append(Mention(pathology, anatomies or ["unspecified"], status, sentence))
            if pathology in ("normal", "unremarkable") and status == "present" and "heart_size" in anatomies:
                mentions.append(Mention("cardiomegaly", ["heart_size"], "absent", sentence))  # "heart size is normal"
        return mentions

    @staticmethod
    def _cues(items: list[_Item], findings: list[int]) -> dict[int, list[str]]:
        """Context cues reaching each finding, in the order they first open (each once: the status reads only the
        first cue and which cues there are, and a list of every repeat grows quadratically with hostile text)."""
        cues: dict[int, list[str]] = {f: [] for f in findings}
        open_cues: list[str] = []
        seen_finding = False
        for i, item in enumerate(items):  # forward scopes: cue ... finding, closed by a copula after a finding
            if item.kind in (_NEG_PRE, _UNC_PRE, _PROB_PRE):
                _add_cue(open_cues, item.kind)
                seen_finding = False
            elif item.kind == _COP and seen_finding:
                open_cues, seen_finding = [], False
            elif item.kind.startswith(_FINDING):
                cues[i].extend(open_cues)
                seen_finding = True
                if len(item.kind) > 1:  # "borderline enlarged": a finding that also hedges what follows
                    _add_cue(open_cues, item.kind[1:])
        for c, item in enumerate(items):
            if item.payload in ("versus", "vs"):  # "atelectasis versus pneumonia": both are uncertain
                earlier = bisect_left(findings, c)  # findings before c
                if earlier:
                    _add_cue(cues[findings[earlier - 1]], _UNC_POST)
            if item.kind not in (_NEG_POST, _UNC_POST):
                continue
            passed_finding = False  # backward scopes: finding ... cue, back to a copula before a finding
            for i in range(c - 1, -1, -1):  # stops at the cue before: each item is walked by one cue at most
                kind = items[i].kind
                if kind in _CUES or (kind == _COP and passed_finding):
                    break
                if kind.startswith(_FINDING):
                    _add_cue(cues[i], item.kind)
                    passed_finding = True
        return cues

    def _places(self, items: list[_Item], findings: list[int], links: _LinkWords) -> dict[int, list[str]]:
        """Anatomies of each finding, shared between coordinated findings where a predicate or phrase places both."""
        located: dict[int, list[str]] = {}
        shareable: dict[int, bool] = {}  # placed by a predicate or a following phrase, not by a pre-modifier
        placed = None  # the last finding with a place so far
        for f in findings:
            located[f], shareable[f] = self._anatomy(items, f, placed, located, links)
            if located[f]:
                placed = f
        pairs = list(zip(findings, findings[1:]))
        for a, b in pairs:  # "the aorta is tortuous and calcified"
            between = {items[i].kind for i in range(a + 1, b)}
            if not located[b] and shareable[a] and _CONJ in between and between <= {_CONJ, _MOD}:
                located[b] = located[a]
        for a, b in reversed(pairs):
            between = {items[i].kind for i in range(a + 1, b)}
            adjective = between <= {_MOD}  # "nodular opacity in the left lung"
            coordinated = shareable[b] and _CONJ in between and between <= {_CONJ, _MOD}  # "atelectasis/pneumonia at"
            if not located[a] and (adjective or coordinated):
                located[a] = located[b]
        return located

    def _status(self, cues: list[str]) -> str:
        negated_first = bool(cues) and cues[0] == _NEG_PRE  # "no suspicious nodule" is a negation
        if (_UNC_PRE in cues and not negated_first) or _UNC_POST in cues:
            return "uncertain"
        if _NEG_PRE in cues or _NEG_POST in cues:
            return "absent"
        if _PROB_PRE in cues and not self.likely_is_positive:
            return "uncertain"
        return "present"

    @staticmethod
    def _run(items: list[_Item], start: int, step: int) -> list[str]:
        """Anatomy, modifier and conjunction words from ``start`` walking by ``step``, in reading order."""
        words, i = [], start
        while 0 <= i < len(items) and items[i].kind in (_ANAT, _MOD, _CONJ):
            words.append(items[i].payload)
            i += step
        words = words[::-1] if step < 0 else words
        while words and words[0] in ("and", "or", ",", "and/or", "/"):
            words.pop(0)
        return words

    def _anatomy(self, items, f, placed, located, links) -> tuple[list[str], bool]:
        """The anatomies of finding ``f`` and whether they came from a predicate or following phrase; ``placed`` is
        the last finding before ``f`` with a place (or None)."""
        default = "pleural" if items[f].payload in ("effusion", "fluid") else "lung"
        before = self._run(items, f - 1, -1)  # "left lower lobe [airspace] consolidation"
        words = list(before)
        i = f + 1
        while i < len(items) and items[i].kind == _MOD and items[i].payload in ("the", "a", "an"):
            i += 1
        if i < len(items) and items[i].kind == _ANAT:  # "enlarged cardiac silhouette"
            words += ["and"] + self._run(items, i, 1)
        else:  # "consolidation [is seen] in the right middle lobe"
            for j in range(f + 1, min(len(items), f + 8)):
                kind = items[j].kind
                if kind.startswith(_FINDING) or kind in _CUES:
                    break
                if kind == _PREP:
                    k = j + 1
                    while k < len(items) and items[k].kind == _PREP:
                        k += 1
                    words += ["and"] + self._run(items, k, 1)
                    break
        j = f - 1  # "the heart [size] is [not] [mildly] enlarged"
        while j >= 0 and items[j].kind in (_MOD, _NEG_PRE, _UNC_PRE, _PROB_PRE):
            j -= 1
        if j >= 0 and items[j].kind == _COP:
            words += ["and"] + self._run(items, j - 1, -1)
        anatomies = lx.resolve_anatomy(words, default)
        if anatomies:
            return anatomies, bool(lx.resolve_anatomy(words[len(before) :], default))
        if placed is not None and links.between(items[placed].end, items[f].start):
            return list(located[placed]), False  # "blunting of the left costophrenic angle consistent with effusion"
        return [], False


@lru_cache(maxsize=8)
def _extractor(
    uncertain: str, likely_is_positive: bool, sections: tuple[str, ...], max_chars: int | None
) -> ReportExtractor:
    return ReportExtractor(uncertain, likely_is_positive, sections, max_chars)


def extract_triplets(
    text: str,
    uncertain: str = "ignore",
    likely_is_positive: bool = True,
    sections: tuple[str, ...] = PREFERRED_SECTIONS,
    max_chars: int | None = MAX_REPORT_CHARS,
) -> list[tuple[str, str, int]]:
    """Report text -> ``[(anatomy, pathology, 1|0), ...]``; see ``ReportExtractor`` for the options."""
    return _extractor(uncertain, likely_is_positive, tuple(sections), max_chars)(text)
