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
"""Benchmark and quality report of the report extractor, on one core.

Prints, from one run: extraction reports/s (median of ``--repeats`` passes) over the 3,955 real IU reports and the
1,000 radlabels reports; seconds per megabyte of hostile text (no length cap), which must stay linear; the wall time
of the datalist command over the IU archive (reading, extraction, writing, interpreter start included); and the
quality tables of ``docs/report_extraction.md`` (IU gold sentences, IU MeSH headings, radlabels).

    python scripts/bench_reports.py [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from medslip_monai.assets import fetch_wheel
from medslip_monai.reports import ReportExtractor
from medslip_monai.reports.corpora import Problem, read_iu
from medslip_monai.reports.quality import (
    evaluate_iu_gold,
    evaluate_iu_mesh,
    evaluate_radlabels,
    markdown_table,
    radlabels_cases,
)

GOLD = Path(__file__).resolve().parents[1] / "tests" / "data" / "iu_gold.json"
#: Texts that took the first version minutes (quadratic), by name.
HOSTILE = {
    "'no' + 500,000 blanks": "no" + " " * 500_000,
    "300,000 newlines": "\n" * 300_000,
    "'no effusion ' x 50,000": "no effusion " * 50_000,
}


def rate(texts: list[str], repeats: int) -> float:
    extractor = ReportExtractor()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for text in texts:
            extractor(text)
        times.append(time.perf_counter() - start)
    return len(texts) / statistics.median(times)


def hostile_seconds_per_mb() -> dict[str, float]:
    """Seconds per megabyte of each ``HOSTILE`` text, read with no length cap."""
    extractor = ReportExtractor(max_chars=None)
    seconds = {}
    for name, text in HOSTILE.items():
        start = time.perf_counter()
        extractor(text)
        seconds[name] = (time.perf_counter() - start) / (len(text) / 1e6)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    txv, radlabels = fetch_wheel("torchxrayvision"), fetch_wheel("radlabels")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "NLMCXR_reports.tgz"
        with zipfile.ZipFile(txv) as wheel:
            archive.write_bytes(wheel.read("torchxrayvision/data/NLMCXR_reports.tgz"))
        iu = [s.report for s in read_iu(archive, tmp) if not isinstance(s, Problem)]
        results["iu_reports_per_second"] = rate(iu, args.repeats)
        results["radlabels_reports_per_second"] = rate([t for _, t, _ in radlabels_cases(radlabels)], args.repeats)
        results["hostile_seconds_per_mb"] = hostile_seconds_per_mb()
        arguments = ["--reports", str(archive), "--images", tmp, "--out", str(Path(tmp) / "iu.json")]
        command = [sys.executable, "-m", "medslip_monai.reports", "iu", *arguments, "--no-check-images", "--quiet"]
        start = time.perf_counter()
        summary = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
        results["iu_command_wall_seconds"] = time.perf_counter() - start
        results["iu_command"] = summary
    print(
        f"extraction, one core: IU {results['iu_reports_per_second']:.0f} reports/s ({len(iu)} reports), "
        f"radlabels {results['radlabels_reports_per_second']:.0f} reports/s (median of {args.repeats})"
    )
    print(
        "hostile text, no length cap: "
        + ", ".join(f"{name} {value:.2f} s/MB" for name, value in results["hostile_seconds_per_mb"].items())
    )
    print(
        f"datalist command over the 3,955 IU reports: {results['iu_command_wall_seconds']:.1f} s wall "
        f"({summary['reports_per_second']} reports/s inside the command; {summary['problems']} problems reported)"
    )
    gold = json.loads(GOLD.read_text())
    for batch in ("development", "held-out"):
        result = evaluate_iu_gold(txv, [g for g in gold if g["batch"] == batch])
        results[f"iu_gold_{batch}"] = {k: v for k, v in result.items() if k != "per_finding"}
        print(
            f"\nIU gold, {batch} batch ({result['sentences']} sentences), triplet precision "
            f"{result['triplet_precision']:.3f} recall {result['triplet_recall']:.3f}\n{markdown_table(result)}"
        )
    mesh = evaluate_iu_mesh(txv)
    results["iu_mesh"] = {k: v for k, v in mesh.items() if k != "per_finding"}
    print(
        f"\nIU MeSH major headings as weak labels ({mesh['reports']} reports; MeSH states no negations)\n"
        f"{markdown_table(mesh)}"
    )
    for policy in ("positive", "ignore"):
        result = evaluate_radlabels(radlabels, ReportExtractor(uncertain=policy))
        results[f"radlabels_uncertain_{policy}"] = {k: v for k, v in result.items() if k != "per_finding"}
        print(f"\nradlabels, uncertain={policy}\n{markdown_table(result)}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
