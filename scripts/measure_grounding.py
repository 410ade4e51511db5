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
"""Where a pre-trained model says findings are, on a split of the synthetic world: classification and grounding
from the pre-training's own validation evaluator (AUC; pointing game on boxes, on masks by the released patch rule,
with centred patches and by the strict pixel rule), and how well the ``locations`` output names the place.

Locations, for every (image, finding) whose report states the finding at a place: ``top1`` is the share whose most
likely place is one the report states; ``side`` is, among those stated on one side only, the share whose
locations put more mass on that side than on the other; ``no_location`` counts findings whose map pointed nowhere.
The locations come through ``bundle/configs/inference.json`` (its preprocessing and prediction path).

    python scripts/measure_grounding.py --bundle_root bundle --split test
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from monai.bundle import ConfigParser

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundle" / "configs"
#: train.json settings that shape the network, read back from the run's ``models/model.json``.
NETWORK_SETTINGS = ("backbone", "image_size", "token_stride", "positional_encoding", "anatomy_prompts", "text_encoder")


def evaluator_scores(bundle_root: Path, split: str, dataset_dir: Path) -> dict:
    """The pre-training validation evaluator of ``train.json`` run on ``split`` with the best weights: mean AUC and
    pointing games (``{"auc", "pointing_game", "pointing_game_masks", "pointing_game_centred",
    "pointing_game_strict"}``, each the mean over findings' items)."""
    record = json.loads((bundle_root / "models" / "model.json").read_text())["config"]
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    parser.update({key: record[key] for key in NETWORK_SETTINGS if key in record})
    parser.update({"bundle_root": str(bundle_root), "dataset_dir": str(dataset_dir), "dataset_type": "Dataset"})
    parser["validate"]["dataset"]["data"] = f"$medslip_monai.data.load_datalist(@val_datalist, '{split}')"
    parser["validate"]["handlers"] = []
    network = parser.get_parsed_content("network")
    network.load_state_dict(torch.load(bundle_root / "models" / "model.pt", map_location="cpu", weights_only=True))
    evaluator = parser.get_parsed_content("validate#evaluator")
    evaluator.run()
    names = ("auc", "pointing_game", "pointing_game_masks", "pointing_game_centred", "pointing_game_strict")
    return {name: float(evaluator.state.metrics[f"{name}/mean"]) for name in names}


def location_scores(bundle_root: Path, split: str, dataset_dir: Path) -> dict:
    """``{"top1", "side", "pairs", "one_sided", "no_location"}`` of the ``locations`` output on ``split``."""
    from medslip_monai.data import load_datalist
    from medslip_monai.data.synthetic import FINDINGS
    from medslip_monai.vocab import ANATOMIES, ANATOMY_SIDES, NON_LOCATIONS

    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    parser.update({"bundle_root": str(bundle_root), "findings": list(FINDINGS)})
    network = parser.get_parsed_content("network_def").eval()
    network.load_state_dict(torch.load(parser.get_parsed_content("model_file"), map_location="cpu", weights_only=True))
    preprocessing, inferer = parser.get_parsed_content("preprocessing"), parser.get_parsed_content("inferer")
    items = load_datalist(dataset_dir / "pretrain.json", split)
    right = torch.tensor([ANATOMY_SIDES[name] == "right" for name in ANATOMIES])
    left = torch.tensor([ANATOMY_SIDES[name] == "left" for name in ANATOMIES])
    counts = {"top1": 0, "side": 0, "pairs": 0, "one_sided": 0, "no_location": 0}
    for start in range(0, len(items), 32):
        chunk = items[start : start + 32]
        images = torch.stack([torch.as_tensor(preprocessing({"image": item["image"]})["image"]) for item in chunk])
        locations = inferer(images, network).locations
        for b, item in enumerate(chunk):
            for k, finding in enumerate(FINDINGS):
                stated = {a for a, p, v in item["triplets"] if p == finding and v == 1 and a not in NON_LOCATIONS}
                if not stated:
                    continue
                where = locations[b, k]
                counts["pairs"] += 1
                if float(where.sum()) == 0:
                    counts["no_location"] += 1
                    continue
                counts["top1"] += ANATOMIES[int(where.argmax())] in stated
                sides = {ANATOMY_SIDES[name] for name in stated} - {None}
                if len(sides) == 1:
                    counts["one_sided"] += 1
                    guess = "right" if float(where[right].sum()) > float(where[left].sum()) else "left"
                    counts["side"] += guess == sides.pop()
    return {
        **counts,
        "top1": counts["top1"] / max(counts["pairs"], 1),
        "side": counts["side"] / max(counts["one_sided"], 1),
    }


def measure(bundle_root: Path, split: str = "test", dataset_dir: Path | None = None) -> dict:
    """Both measurements of the model in ``bundle_root`` (its world: ``dataset_dir``, default
    ``<bundle_root>/data/synthetic_cxr``)."""
    bundle_root = Path(bundle_root)
    dataset_dir = Path(dataset_dir or bundle_root / "data" / "synthetic_cxr")
    return {
        **evaluator_scores(bundle_root, split, dataset_dir),
        "locations": location_scores(bundle_root, split, dataset_dir),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle_root", type=Path, default=REPO / "bundle")
    parser.add_argument("--split", default="test", choices=("training", "validation", "test"))
    parser.add_argument("--dataset_dir", type=Path, default=None, help="default: <bundle_root>/data/synthetic_cxr")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.bundle_root, args.split, args.dataset_dir), indent=1))


if __name__ == "__main__":
    sys.exit(main())
