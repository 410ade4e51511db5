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
"""Data: datalists, readers, the preprocessing chain, dictionary transforms and the synthetic chest X-ray world."""

import importlib

from medslip_monai.data import synthetic
from medslip_monai.data.datalist import build_dataset, collate_loaded, label_fraction, load_datalist
from medslip_monai.data.preprocessing import IMAGENET_MEAN, IMAGENET_STD, radiograph_transforms
from medslip_monai.data.readers import LoadLabelMapd, LoadXRayd, XRayDicomReader, XRayNiftiReader, list_images
from medslip_monai.data.transforms import (
    AsThreeChannelsd,
    BoxesToMaskd,
    ClassIndexd,
    DecodeFindingMasksd,
    RandLateralFlipd,
    SampleProtoCLNegativesd,
    TripletsToMatrixd,
    triplets_to_matrix,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "AsThreeChannelsd",
    "BoxesToMaskd",
    "ClassIndexd",
    "DecodeFindingMasksd",
    "LoadLabelMapd",
    "LoadXRayd",
    "RandLateralFlipd",
    "SampleProtoCLNegativesd",
    "TripletsToMatrixd",
    "XRayDicomReader",
    "XRayNiftiReader",
    "build_dataset",
    "collate_loaded",
    "downstream",
    "label_fraction",
    "list_images",
    "load_datalist",
    "radiograph_transforms",
    "synthetic",
    "triplets_to_matrix",
]


def __getattr__(name: str):
    """``downstream`` is imported on first use, so that ``python -m medslip_monai.data.downstream`` runs it once."""
    if name == "downstream":
        return importlib.import_module("medslip_monai.data.downstream")
    raise AttributeError(f"module 'medslip_monai.data' has no attribute {name!r}")
