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
"""One preprocessing chain: every caller turns the same file into the same network input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from PIL import Image

from medslip_monai.apps.assist import FindingsModel, SegmentationModel
from tests.test_image_input import dicom, picture
from tests_apps.support import CLASSES, IMAGE_SIZE, make_bundle

CONFIGS = Path(__file__).resolve().parents[1] / "bundle" / "configs"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A bundle with a 64-pixel model and one picture per input kind, plus an empty label map."""
    root = make_bundle(tmp_path_factory.mktemp("preprocessing") / "bundle")
    files = root / "files"
    files.mkdir()
    grey = picture(255).astype(np.uint8)
    Image.fromarray(grey).save(files / "grey8.png")
    Image.fromarray(picture(65535).astype(np.uint16)).save(files / "grey16.png")
    Image.fromarray(np.stack([grey] * 3, -1), "RGB").save(files / "rgb.png")
    Image.fromarray(np.stack([grey] * 3 + [np.full_like(grey, 128)], -1), "RGBA").save(files / "rgba.png")
    dicom(files / "mono1.dcm", 4095 - picture(4095), "MONOCHROME1", bits=12)
    Image.fromarray(np.zeros_like(grey)).save(files / "empty_label.png")
    return root


def _parsed(bundle: Path, names: list[str], target: str, **overrides):
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / name) for name in names])
    parser.update({"bundle_root": str(bundle), **overrides})
    return parser.get_parsed_content(target)


@pytest.fixture(scope="module")
def callers(bundle) -> dict:
    """Every route from a file to the network input, as ``name -> (transform, extra item keys)``."""
    label = str(bundle / "files" / "empty_label.png")
    size = {"image_size": IMAGE_SIZE}
    segmentation = ["finetune_classification.json", "finetune_segmentation.json"]
    findings_model = FindingsModel(bundle, CLASSES)  # what the MONAI Label tasks and the Deploy operator run
    return {
        "pre-training": (
            _parsed(bundle, ["train.json"], "train#preprocessing", **size, **{"train#augmentation": []}),
            {"triplets": []},
        ),
        "pre-training validation": (
            _parsed(bundle, ["train.json"], "validate#preprocessing", **size),
            {"labelmap": label, "boxmap": label, "label": [0] * len(CLASSES)},
        ),
        "inference": (_parsed(bundle, ["inference.json"], "preprocessing"), {}),
        "evaluation, classification": (
            _parsed(bundle, ["inference.json", "evaluate.json"], "classification#preprocessing"),
            {"label": [0] * len(CLASSES)},
        ),
        "evaluation, grounding": (
            _parsed(bundle, ["inference.json", "evaluate.json"], "grounding#preprocessing"),
            {"mask": label, "finding": CLASSES[0]},
        ),
        "classification fine-tuning": (
            _parsed(bundle, ["finetune_classification.json"], "validate#preprocessing"),
            {"label": [0] * len(CLASSES)},
        ),
        "segmentation fine-tuning": (_parsed(bundle, segmentation, "validate#preprocessing"), {"label": label}),
        "MONAI Label and Deploy (findings)": (findings_model.transforms, {}),
        "MONAI Label (segmentation)": (SegmentationModel(bundle, bundle / "segmentation.pt").transforms, {}),
    }


@pytest.mark.parametrize("name", ["grey8.png", "grey16.png", "rgb.png", "rgba.png", "mono1.dcm"])
def test_every_caller_gives_a_file_the_same_input(bundle, callers, name):
    path = str(bundle / "files" / name)
    inputs = {}
    for caller, (transform, extra) in callers.items():
        inputs[caller] = torch.as_tensor(transform({"image": path, **extra})["image"]).float()
    reference = inputs.pop("inference")
    assert reference.shape == (3, IMAGE_SIZE, IMAGE_SIZE)
    for caller, tensor in inputs.items():
        assert torch.equal(tensor, reference), f"{caller} preprocesses {name} differently from inference"


def test_colour_and_alpha_give_the_grey_picture(bundle):
    """A grey picture saved as RGB or RGBA (alpha dropped, not scaled with the picture) is the grey picture."""
    transform = _parsed(bundle, ["inference.json"], "preprocessing")
    grey = transform({"image": str(bundle / "files" / "grey8.png")})["image"]
    for name in ("rgb.png", "rgba.png"):
        assert torch.equal(transform({"image": str(bundle / "files" / name)})["image"], grey), name
