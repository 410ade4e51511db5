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
"""Vocabulary order and the offline text encoder with its cache."""

from __future__ import annotations

import pytest
import torch

from medslip_monai.text import embed_texts, entity_books, resolve_text_encoder
from medslip_monai.vocab import (
    ANATOMIES,
    ANATOMY_PROMPTS,
    ANATOMY_SIDES,
    LATERAL_ANATOMY_PAIRS,
    PATHOLOGIES,
    PATHOLOGY_DESCRIPTIONS,
    anatomy_index,
    anatomy_prompts,
    pathology_index,
)


def test_official_order_and_sizes():
    assert len(PATHOLOGIES) == 75 and len(ANATOMIES) == 51
    assert PATHOLOGIES[:5] == ("normal", "clear", "sharp", "sharply", "unremarkable")
    assert PATHOLOGIES[5:10] == ("intact", "stable", "free", "effusion", "opacity")
    assert PATHOLOGIES[-2:] == ("tail_abnorm_obs", "excluded_obs")
    assert PATHOLOGIES.index("disease") == 29 and PATHOLOGIES.index("collapse") == 50
    assert ANATOMIES[:3] == ("trachea", "left_hilar", "right_hilar")
    assert ANATOMIES[-3:] == ("lung_volumes", "unspecified", "other")


def test_every_entity_has_its_own_text():
    assert all(len(PATHOLOGY_DESCRIPTIONS[p]) > 20 for p in PATHOLOGIES)
    assert all(ANATOMY_PROMPTS[a].startswith("Located at") for a in ANATOMIES)
    assert len(set(PATHOLOGY_DESCRIPTIONS.values())) == 75 and len(set(ANATOMY_PROMPTS.values())) == 51


def test_lateral_pairs_are_left_right():
    for left, right in LATERAL_ANATOMY_PAIRS:
        assert "left" in left and "right" in right and left.replace("left", "right") == right


def test_sided_prompts_name_the_organ_of_the_side_and_tell_mirrors_apart(tmp_path, monkeypatch):
    sided = anatomy_prompts("sided")
    assert anatomy_prompts() == ANATOMY_PROMPTS and list(sided) == list(ANATOMIES)
    for name in ANATOMIES:
        organ = {"left": "heart", "right": "liver", None: None}[ANATOMY_SIDES[name]]
        assert (organ in sided[name]) if organ else sided[name] == ANATOMY_PROMPTS[name]
    with pytest.raises(ValueError, match="'mirrored' is not one of"):
        anatomy_prompts("mirrored")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    left, right = zip(*LATERAL_ANATOMY_PAIRS)

    def mirror_cosine(prompts: dict[str, str]) -> float:
        embedded = embed_texts([prompts[name] for name in left + right], cache_dir=tmp_path)
        pairs = torch.nn.functional.cosine_similarity(embedded[: len(left)], embedded[len(left) :], dim=-1)
        return float(pairs.mean())

    assert mirror_cosine(ANATOMY_PROMPTS) > 0.95 and mirror_cosine(sided) < 0.9  # measured 0.98 and 0.89


def test_unknown_names_raise_clearly():
    with pytest.raises(KeyError, match="unknown pathology entity 'pneumonitis'"):
        pathology_index("pneumonitis")
    with pytest.raises(KeyError, match="unknown anatomy entity"):
        anatomy_index("kidney")


def test_local_folder_required_for_other_encoders(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        resolve_text_encoder("emilyalsentzer/Bio_ClinicalBERT")


def test_default_encoder_embeds_offline_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    books = entity_books(cache_dir=tmp_path)
    assert books.pathology.shape == (75, 384) and books.anatomy.shape == (51, 384) and books.dim == 384
    cached = list(tmp_path.glob("*.pt"))
    assert len(cached) == 1
    again = entity_books(cache_dir=tmp_path)  # served from the cache
    assert torch.equal(again.pathology, books.pathology)
    # meaning survives: effusion's description is closer to a pleural-fluid sentence than to a fracture one
    probe = embed_texts(["fluid in the pleural space at the lung base", "a broken rib"], cache_dir=tmp_path)
    cosine = torch.nn.functional.cosine_similarity
    effusion = books.pathology[pathology_index("effusion")]
    assert cosine(effusion, probe[0], dim=0) > cosine(effusion, probe[1], dim=0)


def test_bert_folder_with_cls_pooling(tmp_path):
    """Any BERT-family folder works by path; the query width follows the encoder's hidden size."""
    from transformers import BertConfig, BertModel

    folder = tmp_path / "tiny-bert"
    source = resolve_text_encoder(None)
    config = BertConfig(
        vocab_size=30522, hidden_size=48, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).write_bytes((source / name).read_bytes())
    books = entity_books(folder, cache_dir=tmp_path / "cache")
    assert books.dim == 48 and books.pathology.shape == (75, 48)
