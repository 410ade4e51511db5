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
"""A synthetic chest X-ray world: images, reports, triplets, masks, boxes and datalists for every task.

The command line, run as ``python -m medslip_monai.data.synthetic``; prints counts, prevalence and speed as JSON.
"""

from __future__ import annotations

import argparse
import json

from medslip_monai.data.synthetic.world import generate_world

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m medslip_monai.data.synthetic", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--num", type=int, default=2000, help="training images (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training split; held-out splits use seed+1/+2")
    parser.add_argument("--num-val", type=int, default=None, help="validation images (default max(50, num/5))")
    parser.add_argument("--num-test", type=int, default=None, help="test images (default = num-val)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    args = parser.parse_args(argv)
    world = generate_world(args.out, args.num, args.seed, args.num_val, args.num_test, args.size, args.workers)
    print(json.dumps({k: world[k] for k in ("counts", "prevalence", "images_per_second")}, indent=1))
