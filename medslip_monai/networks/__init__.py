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
"""MeDSLIP networks: pre-training (``MeDSLIP``), inference (``MeDSLIPPredictor``) and fine-tuning."""

from medslip_monai.networks.finetune import MeDSLIPClassifier, MeDSLIPUNet, load_encoder_weights
from medslip_monai.networks.medslip import SUPPORTED_BACKBONES, MeDSLIP, QueryDecoder, QueryDecoderLayer, ResNetTrunk
from medslip_monai.networks.prediction import Prediction
from medslip_monai.networks.predictor import MeDSLIPPredictor

__all__ = [
    "SUPPORTED_BACKBONES",
    "MeDSLIP",
    "MeDSLIPClassifier",
    "MeDSLIPPredictor",
    "MeDSLIPUNet",
    "Prediction",
    "QueryDecoder",
    "QueryDecoderLayer",
    "ResNetTrunk",
    "load_encoder_weights",
]
