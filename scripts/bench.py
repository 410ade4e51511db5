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
"""Benchmarks of MeDSLIP on CPU (paper configuration: ResNet-50 trunk, 224 px, 768-d text queries).

Prints, from one run:
  * the median full training-step time (forward, loss, backward, AdamW step) beside the median trunk-only
    forward+backward time of the same batch, measured interleaved, and their ratio;
  * training images/s and peak resident memory at each ``--throughput-batches`` size, each in a fresh process
    so that the peak belongs to that batch size alone;
  * inference images/s of the deployed network (``MeDSLIPPredictor.forward``: 75 finding probabilities) beside the
    trunk-only forward of the same batch, interleaved, and their ratio; and of ``predict`` (adds grounding maps
    and locations).

    python scripts/bench.py                      # all of the above
    python scripts/bench.py --no-training        # inference only (batch 16)
    python scripts/bench.py --repeats 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from medslip_monai.data import SampleProtoCLNegativesd
from medslip_monai.engines import weight_decay_groups
from medslip_monai.losses import MeDSLIPLoss
from medslip_monai.networks import MeDSLIP, MeDSLIPPredictor
from medslip_monai.text import EntityBooks
from medslip_monai.utils import tune_cpu_allocator
from medslip_monai.vocab import ANATOMIES, PATHOLOGIES


def make_batch(batch: int, size: int, seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A random image batch and targets with report-like sparsity (a few present and negated cells per image)."""
    rng = np.random.default_rng(seed)
    sampler = SampleProtoCLNegativesd(keys="matrix")
    sampler.set_random_state(seed)
    items = []
    for _ in range(batch):
        matrix = np.full((len(ANATOMIES), len(PATHOLOGIES)), -1, np.int8)
        cells = rng.integers(0, [len(ANATOMIES), len(PATHOLOGIES)], size=(12, 2))
        matrix[cells[:, 0], cells[:, 1]] = rng.integers(0, 2, size=12)
        items.append(sampler({"matrix": torch.from_numpy(matrix)}))
    targets = {key: torch.stack([item[key] for item in items]) for key in items[0]}
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)), targets


def build(backbone: str, text_dim: int, token_stride: int = 16) -> tuple[MeDSLIP, MeDSLIPLoss, torch.optim.Optimizer]:
    torch.manual_seed(0)
    books = EntityBooks(torch.randn(len(PATHOLOGIES), text_dim), torch.randn(len(ANATOMIES), text_dim))
    network = MeDSLIP(books, backbone=backbone, token_stride=token_stride).train()
    optimizer = torch.optim.AdamW(weight_decay_groups(network, 0.02), lr=1e-4, fused=True)  # as train.json
    return network, MeDSLIPLoss(), optimizer


def full_step(network, loss_fn, optimizer, image, targets) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss_fn(network(image), targets).backward()
    optimizer.step()


def trunk_step(network, image) -> None:
    network.zero_grad(set_to_none=True)
    network.trunk(image).mean().backward()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ratio_benchmark(args) -> dict:
    network, loss_fn, optimizer = build(args.backbone, args.text_dim, args.token_stride)
    image, targets = make_batch(args.batch, args.image_size)
    for _ in range(args.warmup):
        trunk_step(network, image)
        full_step(network, loss_fn, optimizer, image, targets)
    trunk, full = [], []
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits both alike
        trunk.append(timed(lambda: trunk_step(network, image)))
        full.append(timed(lambda: full_step(network, loss_fn, optimizer, image, targets)))
    ratios = [f / t for f, t in zip(full, trunk)]
    return {
        "batch": args.batch,
        "trunk_median_s": statistics.median(trunk),
        "full_median_s": statistics.median(full),
        "ratio_of_medians": statistics.median(full) / statistics.median(trunk),
        "ratio_median_of_pairs": statistics.median(ratios),
    }


def throughput_child(args) -> dict:
    network, loss_fn, optimizer = build(args.backbone, args.text_dim, args.token_stride)
    image, targets = make_batch(args.batch, args.image_size)
    for _ in range(args.warmup):
        full_step(network, loss_fn, optimizer, image, targets)
    times = [timed(lambda: full_step(network, loss_fn, optimizer, image, targets)) for _ in range(args.repeats)]
    return {
        "batch": args.batch,
        "step_median_s": statistics.median(times),
        "images_per_s": args.batch / statistics.median(times),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }


def inference_benchmark(args) -> dict:
    torch.manual_seed(0)
    books = EntityBooks(torch.randn(len(PATHOLOGIES), args.text_dim), torch.randn(len(ANATOMIES), args.text_dim))
    network = MeDSLIPPredictor(books=books, backbone=args.backbone, token_stride=args.token_stride).eval()
    image = torch.randn(args.inference_batch, 3, args.image_size, args.image_size)
    trunk, full, predict = [], [], []
    with torch.inference_mode():
        for _ in range(args.warmup):
            network.trunk(image), network(image), network.predict(image)
        for _ in range(args.repeats):  # interleaved, so drifting machine load hits all alike
            trunk.append(timed(lambda: network.trunk(image)))
            full.append(timed(lambda: network(image)))
            predict.append(timed(lambda: network.predict(image)))
    batch = args.inference_batch
    return {
        "batch": batch,
        "trunk_images_per_s": batch / statistics.median(trunk),
        "full_images_per_s": batch / statistics.median(full),
        "predict_images_per_s": batch / statistics.median(predict),
        "full_over_trunk_throughput": statistics.median(trunk) / statistics.median(full),
        "median_of_paired_ratios": statistics.median(t / f for t, f in zip(trunk, full)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--token-stride", type=int, default=16, choices=(16, 8), help="the trunk's token stride")
    parser.add_argument("--text-dim", type=int, default=768, help="query text width (768 = Bio_ClinicalBERT)")
    parser.add_argument("--batch", type=int, default=8, help="batch of the ratio benchmark")
    parser.add_argument("--throughput-batches", type=int, nargs="*", default=[8, 32])
    parser.add_argument("--inference-batch", type=int, default=16, help="batch of the inference benchmark (0: skip)")
    parser.add_argument("--no-training", action="store_true", help="only the inference benchmark")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument(
        "--default-allocator", action="store_true", help="keep glibc's malloc defaults (no tune_cpu_allocator)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tuned = False if args.default_allocator else tune_cpu_allocator()
    if args.child:
        print(json.dumps(throughput_child(args)))
        return

    header = (
        f"{args.backbone}, {args.image_size} px, token stride {args.token_stride}, text width {args.text_dim}, "
        f"{torch.get_num_threads()} threads, "
        f"allocator {'tuned' if tuned else 'default'}"
    )
    ratio, rows, inference = None, [], None
    if not args.no_training:
        ratio, rows = training_benchmarks(args, header)
    if args.inference_batch:
        print(f"MeDSLIP inference benchmark ({header}), CPU, torch {torch.__version__}")
        inference = inference_benchmark(args)
        print(
            f"batch {inference['batch']}: findings forward {inference['full_images_per_s']:.2f} images/s | "
            f"trunk-only forward {inference['trunk_images_per_s']:.2f} images/s | ratio "
            f"{inference['full_over_trunk_throughput']:.3f} (median of paired ratios "
            f"{inference['median_of_paired_ratios']:.3f}; target >= 0.8) | predict (maps and locations) "
            f"{inference['predict_images_per_s']:.2f} images/s"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "ratio": ratio,
                    "throughput": rows,
                    "inference": inference,
                    "threads": torch.get_num_threads(),
                    "allocator_tuned": tuned,
                },
                f,
                indent=1,
            )


def training_benchmarks(args, header: str) -> tuple[dict, list[dict]]:
    print(f"MeDSLIP training-step benchmark ({header}), CPU, torch {torch.__version__}")
    ratio = ratio_benchmark(args)
    print(
        f"batch {ratio['batch']}: full step median {ratio['full_median_s']:.3f} s | trunk-only fwd+bwd median "
        f"{ratio['trunk_median_s']:.3f} s | ratio {ratio['ratio_of_medians']:.3f} "
        f"(median of paired ratios {ratio['ratio_median_of_pairs']:.3f}; target <= 1.45)"
    )
    rows = []
    for batch in args.throughput_batches:
        command = [
            sys.executable,
            __file__,
            "--child",
            "--batch",
            str(batch),
            "--backbone",
            args.backbone,
            "--image-size",
            str(args.image_size),
            "--token-stride",
            str(args.token_stride),
            "--text-dim",
            str(args.text_dim),
            "--warmup",
            "1",
            "--repeats",
            str(max(3, args.repeats // 2)),
        ]
        if args.threads:
            command += ["--threads", str(args.threads)]
        if args.default_allocator:
            command.append("--default-allocator")
        rows.append(json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout))
        row = rows[-1]
        print(
            f"batch {batch}: {row['images_per_s']:.2f} images/s (step median {row['step_median_s']:.2f} s), "
            f"peak RSS {row['peak_rss_gb']:.2f} GB (target at batch 32: < 4.5 GB)"
        )
    if len(rows) > 1:
        print(
            f"throughput batch {rows[-1]['batch']} / batch {rows[0]['batch']}: "
            f"{rows[-1]['images_per_s'] / rows[0]['images_per_s']:.3f} (must not fall below 1)"
        )
    return ratio, rows


if __name__ == "__main__":
    main()
