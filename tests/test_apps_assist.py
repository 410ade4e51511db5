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
"""What the MONAI Label and MONAI Deploy apps compute, in the core environment: label maps, thresholds, and the
bundle's models rebuilt from its configs (the apps themselves are tested in their environments: tests_apps/)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from monai.transforms import LoadImaged

from medslip_monai.apps.assist import FindingsModel, SegmentationModel, label_map, read_thresholds
from medslip_monai.data import DecodeFindingMasksd
from medslip_monai.grounding import heat_maps
from medslip_monai.networks import MeDSLIPPredictor
from tests_apps.support import CLASSES, make_bundle, synthetic_case, write_png


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("assist") / "bundle")


def test_label_map_keeps_the_strongest_finding_above_its_threshold():
    scores = torch.tensor([[[0.9, 0.2], [0.7, 0.0]], [[0.8, 0.6], [0.9, 0.1]]])  # two findings on 2 x 2 pixels
    np.testing.assert_array_equal(label_map(scores, [0.5, 0.5]), [[1, 2], [2, 0]])
    np.testing.assert_array_equal(label_map(scores, [0.95, 0.5]), [[2, 2], [2, 0]])
    np.testing.assert_array_equal(label_map(scores, 0.5, torch.tensor([True, False])), [[1, 0], [1, 0]])
    assert label_map(scores, 0.5).dtype == torch.uint8


def test_thresholds_come_from_the_evaluation_report_with_zero_kept(tmp_path):
    report = {
        "classification": {"effusion": {"threshold": 0.0}, "mean": {"auc": 0.9}},
        "grounding": {"nodule": {"threshold": 0.3}},
    }
    (tmp_path / "metrics.json").write_text(json.dumps(report))
    chosen = read_thresholds(tmp_path / "metrics.json", ["effusion", "nodule"])
    assert chosen == {"classification": [0.0, 0.5], "grounding": [0.5, 0.3]}
    assert read_thresholds(None, ["effusion"]) == {"classification": [0.5], "grounding": [0.5]}
    with pytest.raises(FileNotFoundError, match="evaluate.json"):
        read_thresholds(tmp_path / "missing.json", ["effusion"])


def test_index_label_maps_decode_to_one_mask_per_class(tmp_path):
    load = LoadImaged("label", reader="PILReader", reverse_indexing=False, ensure_channel_first=True)
    decode = DecodeFindingMasksd("label", len(CLASSES), encoding="indices")
    _, labels = synthetic_case(4)
    path = write_png(tmp_path / "label.png", labels)
    masks = decode(load({"label": str(path)}))["label"]
    assert masks.shape == (len(CLASSES), *labels.shape)
    for k in range(len(CLASSES)):
        np.testing.assert_array_equal(masks[k].numpy(), labels == k + 1)
    assert len(np.unique(labels)) > 1  # the case has findings
    labels[0, 0] = len(CLASSES) + 2  # a value with no class
    write_png(path, labels)
    with pytest.raises(ValueError, match="label.png: label values"):
        decode(load({"label": str(path)}))


def test_findings_model_is_the_bundle_predictor_with_heat_maps_at_the_image_size(bundle, tmp_path):
    image, _ = synthetic_case(2, size=96)
    path = write_png(tmp_path / "x.png", image)
    model = FindingsModel(bundle, CLASSES)
    prepared = model.transforms({"image": str(path), "other": 1})
    assert prepared["other"] == 1 and prepared["image"].shape == (3, 64, 64)  # other keys survive (MONAI Label's)
    output = model(prepared["image"])
    reference = MeDSLIPPredictor(findings=CLASSES, text_dim=384, backbone="resnet10").eval()
    reference.load_state_dict(torch.load(bundle / "models" / "model.pt", weights_only=True))
    expected = reference.predict(prepared["image"][None].as_tensor())
    torch.testing.assert_close(output["probabilities"], expected.probabilities[0])
    torch.testing.assert_close(output["heat"], heat_maps(expected.maps[0], (96, 96)))
    torch.testing.assert_close(output["locations"], expected.locations[0])
    assert output["heat"].shape == (len(CLASSES), 96, 96)
    scores_only = model(prepared["image"], heat=False)
    assert set(scores_only) == {"probabilities", "locations"}
    torch.testing.assert_close(scores_only["probabilities"], output["probabilities"])


def test_segmentation_model_loads_strictly_and_names_a_wrong_file(bundle, tmp_path):
    image, _ = synthetic_case(3, size=80)
    path = write_png(tmp_path / "x.png", image)
    model = SegmentationModel(bundle, bundle / "segmentation.pt")
    assert model.classes == CLASSES
    assert model(model.transforms({"image": str(path)})["image"]).shape == (len(CLASSES), 80, 80)
    with pytest.raises(ValueError, match="model.pt does not fit MeDSLIPUNet"):
        SegmentationModel(bundle, bundle / "models" / "model.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        SegmentationModel(bundle, bundle / "missing.pt")
