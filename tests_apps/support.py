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
"""What the MONAI Label and MONAI Deploy tests share: a small bundle with real (untrained) weights, synthetic
chest X-rays with their finding masks, and the real chest CR of the NEMA set.

The apps' job is to serve and package the bundle faithfully, so their tests compare the apps' answers with the
same models run in process; that the models learn is proven by the core suite (tests/test_bundle.py).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from medslip_monai.assets import fetch_wheel
from medslip_monai.data.synthetic import FINDINGS, render_case
from medslip_monai.networks import MeDSLIP, MeDSLIPUNet
from medslip_monai.text import EntityBooks
from medslip_monai.vocab import ANATOMIES, PATHOLOGIES

REPO = Path(__file__).resolve().parents[1]
CLASSES = list(FINDINGS)  # the annotation classes of configs/finetune_segmentation.json
IMAGE_SIZE = 64


def make_bundle(root: Path, present: tuple[str, ...] = ("effusion", "nodule")) -> Path:
    """A bundle folder: the repository's configs, a MeDSLIP ``model.pt`` (ResNet-10, seeded random weights,
    64-pixel input), fine-tuned segmentation weights beside it (``segmentation.pt``) and an
    ``eval/zero_shot/metrics.json`` whose thresholds call ``present`` present whatever their scores."""
    shutil.copytree(REPO / "bundle" / "configs", root / "configs")
    (root / "models").mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    books = EntityBooks(
        torch.randn(len(PATHOLOGIES), 384, generator=generator) / 20,
        torch.randn(len(ANATOMIES), 384, generator=generator) / 20,
    )
    torch.manual_seed(0)
    torch.save(MeDSLIP(books, backbone="resnet10").state_dict(), root / "models" / "model.pt")
    (root / "models" / "model.json").write_text(json.dumps({"config": {"image_size": IMAGE_SIZE}}))
    segmentation = MeDSLIPUNet(len(CLASSES), backbone="resnet10", decoder_channels=(128, 64, 32, 16))
    torch.save(segmentation.state_dict(), root / "segmentation.pt")
    thresholds = {
        "classification": {name: {"threshold": 0.0 if name in present else 1.01} for name in CLASSES},
        "grounding": {name: {"threshold": 0.6} for name in CLASSES},
    }
    (root / "eval" / "zero_shot").mkdir(parents=True)
    (root / "eval" / "zero_shot" / "metrics.json").write_text(json.dumps(thresholds))
    return root


def synthetic_case(index: int, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic chest X-ray (uint8 ``[H, W]``) and its label map in MONAI Label's convention (``k + 1`` where
    class ``k`` lies; a later class wins where findings overlap)."""
    case = render_case(seed=7, index=index, size=size)
    labels = np.zeros((size, size), np.uint8)
    for k, name in enumerate(CLASSES):
        if name in case["masks"]:
            labels[case["masks"][name]] = k + 1
    return case["image"], labels


def write_png(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path)
    return path


def real_chest_dicom(folder: Path) -> Path:
    """The real adult PA chest CR (RG1, MONOCHROME1, 1955 x 1841) from the pinned ``pydicom-data`` wheel."""
    path = folder / "RG1_UNCR.dcm"
    with zipfile.ZipFile(fetch_wheel("pydicom-data")) as wheel:
        path.write_bytes(wheel.read("data_store/data/RG1_UNCR.dcm"))
    return path
