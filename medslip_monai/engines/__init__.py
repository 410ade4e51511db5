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
"""MeDSLIP on MONAI's Ignite engines: training pieces, the prediction inferer, handlers and zero-shot evaluation."""

from medslip_monai.engines.evaluation import OutputCollector, ZeroShotEvaluation, first_test_dataset, split_loaders
from medslip_monai.engines.handlers import (
    BroadcastBuffers,
    MetricsWriter,
    ProvenanceWriter,
    RandomStates,
    RequireBatches,
    ResumableCheckpoint,
    TrainingScalarsHandler,
    latest_checkpoint,
)
from medslip_monai.engines.inference import (
    FindingsWriter,
    GroundingPanel,
    PredictionInferer,
    grounding_box_pairs,
    grounding_pairs,
    stacked_pred_label,
    zero_shot_scores,
)
from medslip_monai.engines.training import PrepareImageAndTargets, training_scalars, weight_decay_groups

__all__ = [
    "BroadcastBuffers",
    "FindingsWriter",
    "GroundingPanel",
    "MetricsWriter",
    "OutputCollector",
    "PredictionInferer",
    "PrepareImageAndTargets",
    "ProvenanceWriter",
    "RandomStates",
    "RequireBatches",
    "ResumableCheckpoint",
    "TrainingScalarsHandler",
    "ZeroShotEvaluation",
    "grounding_box_pairs",
    "first_test_dataset",
    "grounding_pairs",
    "latest_checkpoint",
    "split_loaders",
    "stacked_pred_label",
    "training_scalars",
    "weight_decay_groups",
    "zero_shot_scores",
]
