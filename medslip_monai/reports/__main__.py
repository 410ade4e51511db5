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
"""Command line: build pre-training datalists from report corpora, or extract triplets from one report.

    python -m medslip_monai.reports csv   --csv studies.csv --out datalist.json
    python -m medslip_monai.reports iu    --reports NLMCXR_reports.tgz --images NLMCXR_png \\
        --metadata-csv nlmcxr_dicom_metadata.csv.gz --out iu.json
    python -m medslip_monai.reports mimic --images mimic-cxr-jpg/2.0.0 --reports mimic-cxr-reports \\
        --split-csv mimic-cxr-2.0.0-split.csv.gz --metadata-csv mimic-cxr-2.0.0-metadata.csv.gz --out mimic.json
    python -m medslip_monai.reports extract "No pneumothorax. Small left pleural effusion."

Entries that cannot be used are warnings naming file and reason, counted in the summary; a command fails (one
``error:`` line, exit status 1; the traceback with ``--verbose``) only when an input is missing or unreadable as a
whole, or nothing usable is left.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from pathlib import Path

from medslip_monai.errors import VERBOSE_FLAG, run_command
from medslip_monai.reports.corpora import Problem, build_pretraining_datalist, read_csv, read_iu, read_mimic
from medslip_monai.reports.extract import MAX_REPORT_CHARS, UNCERTAIN_POLICIES, ReportExtractor
from medslip_monai.reports.radgraph import load_radgraph

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m medslip_monai.reports", description=__doc__.split("\n")[0])
    parser.add_argument(VERBOSE_FLAG, action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    limit = argparse.ArgumentParser(add_help=False)
    limit.add_argument(
        "--max-report-chars",
        type=int,
        default=MAX_REPORT_CHARS,
        help=f"longer reports are skipped as problems, or truncated by extract (default {MAX_REPORT_CHARS:,}; "
        "0: no limit)",
    )
    common = argparse.ArgumentParser(add_help=False, parents=[limit])
    common.add_argument("--out", required=True, help="datalist JSON to write")
    common.add_argument(
        "--uncertain",
        choices=UNCERTAIN_POLICIES,
        default="ignore",
        help="uncertain mentions: left unmentioned (default), present or absent",
    )
    common.add_argument("--likely-uncertain", action="store_true", help="treat 'likely X' as uncertain, not present")
    common.add_argument("--val-fraction", type=float, default=0.05, help="patients for validation without a split")
    common.add_argument("--test-fraction", type=float, default=0.05, help="patients for test without a split")
    common.add_argument("--seed", type=int, default=0, help="seed of the patient split")
    common.add_argument("--no-check-images", action="store_true", help="do not check that image files exist")
    common.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("csv", parents=[common], help="a CSV of image path and report text")
    p.add_argument("--csv", required=True)
    p.add_argument("--image-column", default="image")
    p.add_argument("--report-column", default="report")
    p.add_argument("--split-column", default="split", help="optional column train/validate/test")
    p.add_argument("--patient-column", default=None, help="optional column grouping studies for the split")
    p.add_argument("--image-root", default=None, help="folder of relative image paths (default: the CSV's)")

    p = sub.add_parser("iu", parents=[common], help="IU/OpenI XML reports (folder or .tgz) and their images")
    p.add_argument("--reports", required=True)
    p.add_argument("--images", required=True)
    p.add_argument("--image-suffix", default=".png")
    p.add_argument("--metadata-csv", default=None, help="DICOM header table (imageid, View Position)")
    p.add_argument("--views", nargs="*", default=["PA", "AP"], help="View Position values kept (with metadata)")

    p = sub.add_parser("mimic", parents=[common], help="a MIMIC-CXR(-JPG) folder tree with its reports")
    p.add_argument("--images", required=True, help="folder holding files/pXX/pSUBJECT/sSTUDY/*.jpg")
    p.add_argument("--reports", default=None, help="folder holding files/pXX/pSUBJECT/sSTUDY.txt")
    p.add_argument("--split-csv", default=None)
    p.add_argument("--metadata-csv", default=None)
    p.add_argument("--views", nargs="*", default=["PA", "AP"], help="ViewPosition values kept (with metadata)")
    p.add_argument("--radgraph", default=None, help="MIMIC-CXR_graphs.json: use RadGraph instead of the text")

    p = sub.add_parser("extract", parents=[limit], help="print the triplets of one report (text or - for stdin)")
    p.add_argument("text")
    p.add_argument("--uncertain", choices=UNCERTAIN_POLICIES, default="ignore")
    p.add_argument("--likely-uncertain", action="store_true")
    return parser


def _exists(path: str | None, option: str) -> None:
    """``FileNotFoundError`` naming ``option`` when ``path`` is given and does not exist."""
    if path is not None and not Path(path).exists():
        raise FileNotFoundError(f"{path} does not exist; check {option}")


def main(argv: list[str] | None = None) -> int:
    """Run the command of ``argv``; 0 on success (errors are exceptions, see ``medslip_monai.errors``)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    max_chars = args.max_report_chars if args.max_report_chars > 0 else None
    extractor = ReportExtractor(args.uncertain, likely_is_positive=not args.likely_uncertain, max_chars=max_chars)
    if args.command == "extract":
        text = args.text
        if text == "-":  # read no more than is used
            text = sys.stdin.read(max_chars + 1) if max_chars is not None else sys.stdin.read()
            if max_chars is not None and len(text) > max_chars:
                logging.warning("stdin: the report is longer than %d characters; only those are read", max_chars)
                text = text[:max_chars]
        print(json.dumps([list(t) for t in extractor(text)]))
        return 0
    problems: list[Problem] = []
    if args.command == "csv":
        _exists(args.csv, "--csv")
        studies = read_csv(
            args.csv, args.image_column, args.report_column, args.split_column, args.patient_column, args.image_root
        )
    elif args.command == "iu":
        _exists(args.reports, "--reports")
        _exists(args.metadata_csv, "--metadata-csv")
        studies = read_iu(args.reports, args.images, args.image_suffix, args.metadata_csv, args.views)
    else:
        for path, option in ((args.images, "--images"), (args.reports, "--reports"), (args.radgraph, "--radgraph")):
            _exists(path, option)
        _exists(args.split_csv, "--split-csv")
        _exists(args.metadata_csv, "--metadata-csv")
        radgraph = load_radgraph(args.radgraph, args.uncertain, problems) if args.radgraph else None
        studies = read_mimic(args.images, args.reports, args.split_csv, args.metadata_csv, args.views, radgraph)
    summary = build_pretraining_datalist(
        itertools.chain(problems, studies),
        args.out,
        extractor,
        check_images=not args.no_check_images,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        progress=not args.quiet,
        max_report_chars=max_chars,
    )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
