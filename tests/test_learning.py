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
"""The model learns: a short CPU pre-training (the session's ``pretrained_bundle``) classifies and grounds held-out
images, and inference, zero-shot evaluation and segmentation fine-tuning on its weights do what they promise.

The test split (world seed + 2) is never used for model selection; validation (seed + 1) picks the epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.metrics import compute_roc_auc

from medslip_monai.data import load_datalist
from medslip_monai.data.synthetic import FINDINGS
from medslip_monai.vocab import ANATOMY_SIDES, NON_LOCATIONS
from tests.conftest import BUNDLE, run_config

pytestmark = pytest.mark.slow

MIN_TEST_AUC = 0.90
MIN_TEST_POINTING_GAME = 0.30  # chance (a random peak token) is 0.11; runs measured 0.43 and 0.53
MIN_TEST_F1 = 0.70  # mean F1 at thresholds chosen on validation
#: Findings described in words the model never saw, scored through inference.json as new findings.
PARAPHRASES = {
    "effusion": "Fluid in the pleural space at the lung base, blunting the costophrenic angle.",
    "pneumothorax": "Air in the pleural space with a visible pleural line and no lung markings beyond it.",
    "cardiomegaly": "The heart is enlarged; the cardiac silhouette is wider than half of the chest.",
}
MIN_PARAPHRASE_AUC = 0.85  # measured 0.97 to 1.00 (world v4: 0.999, 0.966, 0.991)
#: The locations output on the test images (200): its top place is one the report states, and among findings stated
#: on one side, its places on that side outweigh those on the other. Chance: 0.02 and 0.5. The floors sit below the
#: lowest of three seeds of this recipe read with the plain map mass; the sharpened reading (``locations.SHARPNESS``)
#: measured 0.728 and 0.733 on one model (world v4, seed 0, test split).
MIN_LOCATION_TOP1 = 0.55
MIN_LOCATION_SIDE = 0.62
SEGMENTATION_STEPS = 150
MIN_SEGMENTATION_DICE = 0.25  # 10% of the labels, 150 steps: measured 0.35 (0.11 after 30 steps)


def test_pretraining_keeps_the_best_validation_epoch(pretrained_bundle):
    report = json.loads((pretrained_bundle / "eval" / "metrics.json").read_text())
    provenance = json.loads((pretrained_bundle / "models" / "model.json").read_text())
    assert (pretrained_bundle / "models" / "model.pt").is_file() and report["metrics"]["val_mean_auc"] > 0.5
    assert report["key_metric"] == "val_mean_auc" and 1 <= report["epoch"] <= report["last"]["epoch"]
    assert provenance["epochs_trained"] == report["last"]["epoch"]


@pytest.fixture(scope="module")
def test_split_scores(pretrained_bundle) -> dict:
    """The pre-training validation evaluator, run on the test split with the best weights."""
    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "train.json"))
    parser.update({"bundle_root": str(pretrained_bundle), "dataset_type": "Dataset"})
    parser["validate"]["dataset"]["data"] = "$medslip_monai.data.load_datalist(@datalist, 'test')"
    parser["validate"]["handlers"] = []
    network = parser.get_parsed_content("network")
    network.load_state_dict(
        torch.load(pretrained_bundle / "models" / "model.pt", map_location="cpu", weights_only=True)
    )
    evaluator = parser.get_parsed_content("validate#evaluator")
    evaluator.run()
    scores = evaluator.state.metrics
    print({k: round(float(v), 3) for k, v in scores.items() if not isinstance(v, dict)})
    return scores


def test_pretrained_model_classifies_held_out_images(test_split_scores):
    assert test_split_scores["auc/mean"] >= MIN_TEST_AUC


def test_pretrained_model_points_at_held_out_findings(test_split_scores):
    assert test_split_scores["pointing_game_masks/mean"] >= MIN_TEST_POINTING_GAME


@pytest.fixture(scope="module")
def inference(pretrained_bundle, tmp_path_factory) -> tuple[list[dict], list[dict]]:
    """inference.json on 200 test images with the paraphrased findings: the test items and their output rows."""
    test = load_datalist(pretrained_bundle / "data" / "synthetic_cxr" / "pretrain.json", "test")[:200]
    folder = tmp_path_factory.mktemp("test_images")
    for item in test:
        (folder / Path(item["image"]).name).symlink_to(item["image"])
    output = tmp_path_factory.mktemp("inference")
    new_findings = {f"{label}, in other words": text for label, text in PARAPHRASES.items()}
    overrides = {"input": str(folder), "output_dir": str(output), "new_findings": new_findings, "threshold": 0.0}
    run_config("inference.json", pretrained_bundle, "infer", overlays=False, num_workers=0, **overrides)
    rows = {Path(row["image"]).name: row for row in json.loads((output / "findings.json").read_text())["images"]}
    return test, [rows[Path(item["image"]).name] for item in test]


def _auc(items: list[dict], rows: list[dict], output: str, finding: str) -> float:
    scores = torch.tensor([row["probabilities"][output] for row in rows])
    labels = torch.tensor([item["label"][FINDINGS.index(finding)] for item in items], dtype=torch.float32)
    return float(compute_roc_auc(scores, labels))


def test_inference_scores_held_out_images_as_the_evaluator_does(inference):
    aucs = {name: _auc(*inference, name, name) for name in FINDINGS}
    print({"inference_auc": aucs})
    assert np.mean(list(aucs.values())) >= MIN_TEST_AUC


def test_findings_described_in_new_words_classify(inference):
    aucs = {label: _auc(*inference, f"{label}, in other words", label) for label in PARAPHRASES}
    print({"paraphrase_auc": aucs})
    assert min(aucs.values()) >= MIN_PARAPHRASE_AUC


def test_locations_name_the_place_and_the_side_the_reports_state(inference):
    top1 = sides = pairs = one_sided = 0
    for item, row in zip(*inference):
        for pathology in FINDINGS:
            stated = {a for a, p, v in item["triplets"] if p == pathology and v == 1 and a not in NON_LOCATIONS}
            if not stated:
                continue
            places = row["where"][pathology]
            pairs += 1
            top1 += bool(places) and places[0][0] in stated
            side = {ANATOMY_SIDES[name] for name in stated} - {None}
            if len(side) == 1:
                one_sided += 1
                weight = {"left": 0.0, "right": 0.0, None: 0.0}  # of the places listed (the top three)
                for place, share in places:
                    weight[ANATOMY_SIDES[place]] += share
                stated_side = side.pop()
                sides += weight[stated_side] > weight["left" if stated_side == "right" else "right"]
    print({"location_top1": top1 / pairs, "location_side": sides / one_sided, "pairs": pairs, "one_sided": one_sided})
    assert top1 / pairs >= MIN_LOCATION_TOP1
    assert sides / one_sided >= MIN_LOCATION_SIDE


@pytest.fixture(scope="module")
def zero_shot_report(pretrained_bundle) -> dict:
    """evaluate.json on the pre-trained weights: thresholds chosen on validation, test scores with intervals."""
    configs = ["inference.json", "evaluate.json"]
    run_config(configs, pretrained_bundle, "infer", num_workers=0, bootstrap=200, overlay_items=4)
    report = json.loads((pretrained_bundle / "eval" / "zero_shot" / "metrics.json").read_text())
    print({key: report[key]["mean"] for key in ("classification", "grounding")})
    return report


def test_zero_shot_evaluation_classifies_with_validation_thresholds(zero_shot_report):
    mean = zero_shot_report["classification"]["mean"]
    assert mean["auc"] >= MIN_TEST_AUC and mean["f1"] >= MIN_TEST_F1


def test_zero_shot_evaluation_grounds(zero_shot_report):
    assert zero_shot_report["grounding"]["mean"]["pointing_game"] >= MIN_TEST_POINTING_GAME


def test_segmentation_fine_tuning_from_the_pretrained_encoder_learns(pretrained_bundle):
    """finetune_segmentation.json from the pre-trained weights with 10% of the labels: test Dice with the checkpoint
    chosen on validation. (The same recipe from random weights scores as well on this world; the bundle card has
    both numbers.)"""
    configs = ["finetune_classification.json", "finetune_segmentation.json"]
    run_config(configs, pretrained_bundle, "train", label_fraction=0.1, max_steps=SEGMENTATION_STEPS)
    folder = pretrained_bundle / "eval" / "finetune_segmentation" / "pretrained_0.1"
    test = json.loads((folder / "metrics.json").read_text())
    print({"segmentation_test_dice_10_percent": test["metrics"]})
    assert test["metrics"]["mean_dice"] >= MIN_SEGMENTATION_DICE
    assert test["config"]["pretrained_model"].endswith("model.pt") and test["num_images"] == 300
