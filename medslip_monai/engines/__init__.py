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
"""MeDSLIP on MONAI's Ignite engines: batch preparation, inferers, metrics and handlers."""

from medslip_monai.engines.evaluation import (
    ClassIndexd,
    ClassScoresInferer,
    OutputCollector,
    collect_splits,
    split_loaders,
    write_zero_shot_report,
)
from medslip_monai.engines.findings import FindingsInferer, FindingsWriter
from medslip_monai.engines.handlers import (
    GroundingImageHandler,
    MetricsWriter,
    ProvenanceWriter,
    RandomStates,
    ResumableCheckpoint,
    TrainingScalarsHandler,
    grounding_overlay,
    latest_checkpoint,
)
from medslip_monai.engines.metrics import FindingAUC, PointingGame, pointing_hits
from medslip_monai.engines.workflow import (
    PrepareImageAndTargets,
    ZeroShotInferer,
    grounding_box_pairs,
    grounding_maps,
    grounding_pairs,
    training_scalars,
    weight_decay_groups,
    zero_shot_scores,
)

__all__ = [
    "ClassIndexd",
    "ClassScoresInferer",
    "OutputCollector",
    "collect_splits",
    "split_loaders",
    "write_zero_shot_report",
    "FindingAUC",
    "FindingsInferer",
    "FindingsWriter",
    "GroundingImageHandler",
    "MetricsWriter",
    "PointingGame",
    "PrepareImageAndTargets",
    "ProvenanceWriter",
    "RandomStates",
    "ResumableCheckpoint",
    "TrainingScalarsHandler",
    "ZeroShotInferer",
    "grounding_maps",
    "grounding_overlay",
    "grounding_box_pairs",
    "grounding_pairs",
    "latest_checkpoint",
    "training_scalars",
    "pointing_hits",
    "weight_decay_groups",
    "zero_shot_scores",
]
