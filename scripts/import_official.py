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
"""Import an official MeDSLIP checkpoint into the bundle: ``bundle/models/model.pt`` and its provenance.

    python scripts/import_official.py --checkpoint MeDSLIP_resnet50.pth --text_encoder /models/Bio_ClinicalBERT

The official file holds no entity embeddings (the official model embeds its texts with Bio_ClinicalBERT's [CLS]
state, 128 tokens, at construction), so the books are embedded here from a local encoder folder: our descriptions
by default, or the texts in ``--entity_texts`` (JSON ``{"pathology": {name: text}, "anatomy": {name: text}}``), for
example the descriptions the checkpoint was trained with. Loading is strict: every official key must map to a
network parameter and every parameter must be filled, unless named with ``--ignore``; the missing and unexpected
keys are printed and written to the provenance file. The network keeps the official logit scales (1.0).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from medslip_monai import __version__
from medslip_monai.checkpoint import load_official_checkpoint
from medslip_monai.errors import run_command
from medslip_monai.networks import MeDSLIP
from medslip_monai.reporting import write_json
from medslip_monai.text import entity_books, resolve_text_encoder

BUNDLE = Path(__file__).resolve().parents[1] / "bundle"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="official .pth ({'model': state_dict} or a state dict)")
    parser.add_argument("--text_encoder", default=None, help="local BERT-family folder (default: the embedded MiniLM)")
    parser.add_argument("--entity_texts", default=None, help="JSON of the texts to embed instead of ours")
    parser.add_argument("--pooling", default="cls", choices=("cls", "mean", "auto"), help="official: cls")
    parser.add_argument("--max_length", type=int, default=128, help="official pre-training: 128")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--out", default=str(BUNDLE / "models" / "model.pt"))
    parser.add_argument("--ignore", nargs="*", default=[], help="keys (official or ours) allowed not to fit")
    parser.add_argument("--no-strict", action="store_true", help="load what fits and report the rest")
    args = parser.parse_args(argv)

    texts = json.loads(Path(args.entity_texts).read_text()) if args.entity_texts else {}
    encoder = resolve_text_encoder(args.text_encoder)
    books = entity_books(
        encoder,
        pooling=args.pooling,
        max_length=args.max_length,
        pathology_texts=texts.get("pathology"),
        anatomy_texts=texts.get("anatomy"),
    )
    network = MeDSLIP(books, backbone=args.backbone, init="official", icl_scale=1.0, protocl_scale=1.0)
    report = load_official_checkpoint(args.checkpoint, network, strict=not args.no_strict, ignore=args.ignore)
    print(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = out.with_suffix(".tmp")
    torch.save(network.state_dict(), staged)
    os.replace(staged, out)  # a reader never sees half a file
    source = Path(args.checkpoint).read_bytes()
    record = {
        "file": out.name,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "imported_from": {"path": str(Path(args.checkpoint).resolve()), "sha256": hashlib.sha256(source).hexdigest()},
        "network": {
            "backbone": args.backbone,
            "text_dim": books.dim,
            "icl_scale": 1.0,
            "protocl_scale": 1.0,
            "image_size": 224,
        },
        "text_encoder": {
            "path": str(encoder),
            "pooling": args.pooling,
            "max_length": args.max_length,
            "entity_texts": args.entity_texts,
        },
        "report": {
            "loaded": report.loaded,
            "missing": report.missing,
            "unexpected": report.unexpected,
            "ignored": report.ignored,
            "strict": not args.no_strict,
        },
        "versions": {"medslip_monai": __version__, "torch": torch.__version__},
    }
    write_json(out.with_suffix(".json"), record)
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
