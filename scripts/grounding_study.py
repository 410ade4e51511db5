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
"""The controlled study of training-side levers for grounding (docs/decisions.md, "Grounding levers").

Each arm is ``bundle/configs/train.json`` (the CI recipe: ResNet-10, 128 px, 7 epochs on the synthetic world) with
a few overrides, trained once per seed into ``--out/<arm>/seed<k>`` with ``python -m monai.bundle run`` (a finished
run is not redone), then scored on a split (validation by default) with ``scripts/measure_grounding.py``: mean AUC,
pointing games (boxes; masks by the released patch rule, with centred patches and by the strict pixel rule),
location side and top-1 place, and the median seconds per training step of the run's epochs. Prints a Markdown table
of means and ranges over the seeds and writes ``results_<split>.json``.

    python scripts/grounding_study.py --out /tmp/study --seeds 0 1 --arms faithful stride8
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAIN_CONFIG = REPO / "bundle" / "configs" / "train.json"
sys.path.insert(0, str(REPO / "scripts"))
from measure_grounding import measure  # noqa: E402

#: arm -> train.json overrides
ARMS = {
    "faithful": {},
    "stride8": {"token_stride": 8},
    "stride8_noflip": {"token_stride": 8, "lateral_flip": "false"},
    "stride8_sided": {"token_stride": 8, "anatomy_prompts": "sided", "mirror_negatives": "true"},
    "stride8_sine": {"token_stride": 8, "positional_encoding": "sine"},
    "stride8_sided_sine": {
        "token_stride": 8,
        "anatomy_prompts": "sided",
        "mirror_negatives": "true",
        "positional_encoding": "sine",
    },
    "stride8_long": {"token_stride": 8, "epochs": 14},
}
EPOCH_TIME = re.compile(r"SupervisedTrainer - INFO - Epoch\[\d+\] Complete\. Time taken: (\d+):(\d+):([\d.]+)")


def train(root: Path, world: Path, seed: int, overrides: dict) -> float | None:
    """Train one run (unless it finished before); returns the median seconds per training step, if measured."""
    if (root / "models" / "model.json").is_file():
        return (
            json.loads((root / "study.json").read_text()).get("step_seconds")
            if (root / "study.json").is_file()
            else None
        )
    root.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(TRAIN_CONFIG)]
    command += ["--bundle_root", str(root), "--dataset_dir", str(world), "--seed", str(seed)]
    for key, value in overrides.items():
        command += [f"--{key}", str(value)]
    start = time.time()
    result = subprocess.run(command, capture_output=True, text=True, cwd=root)
    (root / "train.log").write_text(result.stdout + result.stderr)
    if result.returncode:
        raise RuntimeError(f"{root}: training failed:\n{result.stderr[-3000:]}")
    epochs = [int(h) * 3600 + int(m) * 60 + float(s) for h, m, s in EPOCH_TIME.findall(result.stderr + result.stdout)]
    steps = json.loads((root / "models" / "model.json").read_text())["config"]
    per_epoch = 1600 // int(steps.get("batch_size", 16))
    step_seconds = statistics.median(epochs) / per_epoch if epochs else None
    (root / "study.json").write_text(json.dumps({"step_seconds": step_seconds, "wall_seconds": time.time() - start}))
    return step_seconds


def score(root: Path, world: Path, split: str, step_seconds: float | None) -> dict:
    """The measurements of ``scripts/measure_grounding.py`` on ``split`` and the step time."""
    found = measure(root, split, world)
    located = found.pop("locations")
    return {**found, "side": located["side"], "top1_place": located["top1"], "step_seconds": step_seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--world", type=Path, default=None, help="synthetic world folder (default <out>/world)")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--split", default="validation", choices=("validation", "test"))
    args = parser.parse_args(argv)
    world = args.world or args.out / "world"
    table = args.out / f"results_{args.split}.json"
    results = json.loads(table.read_text()) if table.is_file() else {}
    for seed in args.seeds:
        for arm in args.arms:
            root = args.out / arm / f"seed{seed}"
            step = train(root, world, seed, ARMS[arm])
            results.setdefault(arm, {})[str(seed)] = score(root, world, args.split, step)
            table.write_text(json.dumps(results, indent=1))
            print(arm, seed, results[arm][str(seed)], flush=True)
    metrics = (
        "auc",
        "pointing_game",
        "pointing_game_masks",
        "pointing_game_centred",
        "pointing_game_strict",
        "side",
        "top1_place",
        "step_seconds",
    )
    print("| arm | seeds | " + " | ".join(metrics) + " |\n|" + "---|" * (len(metrics) + 2))
    for arm, runs in results.items():
        cells = []
        for metric in metrics:
            values = [run[metric] for run in runs.values() if run.get(metric) is not None]
            spread = f" ({min(values):.3f}-{max(values):.3f})" if len(values) > 1 else ""
            cells.append(f"{statistics.mean(values):.3f}{spread}" if values else "-")
        print(f"| {arm} | {len(runs)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
