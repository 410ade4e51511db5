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
"""What MeDSLIP predicts for a batch of images: the typed result of ``predict``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["Prediction"]


@dataclass
class Prediction:
    """Findings of a batch of ``B`` images, for ``N`` findings (the network's outputs, in order).

    Attributes:
        probabilities: existence probability of each finding ``[B, N]``.
        maps: grounding map of each finding on the token grid ``[B, N, h, w]`` (:func:`medslip_monai.grounding
            .grounding_maps`; :func:`~medslip_monai.grounding.heat_maps` brings them to image size).
        locations: for each finding, a distribution over the 51 anatomy entities ``[B, N, 51]`` (0 for those that
            name no place, see ``MeDSLIP.predict``).
    """

    probabilities: torch.Tensor
    maps: torch.Tensor
    locations: torch.Tensor

    def select(self, outputs: Sequence[int] | torch.Tensor) -> Prediction:
        """The findings at positions ``outputs`` (in that order)."""
        index = torch.as_tensor(outputs, dtype=torch.long, device=self.probabilities.device)
        return Prediction(self.probabilities[:, index], self.maps[:, index], self.locations[:, index])

    def detach_cpu(self) -> Prediction:
        """A float32 copy on the CPU, detached from any graph."""
        return Prediction(*(value.detach().float().cpu() for value in (self.probabilities, self.maps, self.locations)))

    def __len__(self) -> int:
        return int(self.probabilities.shape[0])
