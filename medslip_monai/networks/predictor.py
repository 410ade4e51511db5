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
"""MeDSLIP for inference: finding probabilities (the bundle's network contract), grounding maps and locations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from medslip_monai.networks.medslip import MeDSLIP
from medslip_monai.networks.prediction import Prediction
from medslip_monai.vocab import PATHOLOGIES, pathology_index

__all__ = ["MeDSLIPPredictor"]


class MeDSLIPPredictor(MeDSLIP):
    """A :class:`MeDSLIP` whose ``forward`` returns finding probabilities ``[B, N]``, with open-vocabulary findings.

    It has exactly the parameters and persistent buffers of :class:`MeDSLIP`, so a pre-training or imported
    ``model.pt`` loads strictly, and it needs no text encoder: the entity books are buffers, and new findings arrive
    as embeddings computed once by whoever builds the network (``bundle/configs/inference.json`` embeds the texts of
    ``new_findings`` with the encoder the model was trained with).

    New findings become extra pathology queries. Their self-attention sees the 75 entity queries but neither each
    other nor themselves, and the entity queries do not see them, so adding or removing new findings never changes
    any other output, and a new finding whose embedding equals an entity's book row scores exactly like that entity.

    Args:
        findings: entity names reported, in output order; defaults to all 75 pathologies.
        new_findings: ``[K, text_dim]`` embeddings of extra finding descriptions, reported after ``findings``.
        kwargs: :class:`MeDSLIP` arguments (``text_dim`` or ``books``, ``backbone``, ``icl_scale``, ...).

    Forward:
        ``image [B, 3, H, W]`` -> probabilities ``[B, N]`` (``N = len(findings) + K``); only the pathology stream runs.
        :meth:`predict` gives the same probabilities with grounding maps and anatomical locations.
    """

    def __init__(
        self, findings: Sequence[str] | None = None, new_findings: torch.Tensor | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        names = list(PATHOLOGIES if findings is None else findings)
        text_dim = self.query_embedding.in_features
        extra = torch.zeros(0, text_dim) if new_findings is None else torch.as_tensor(new_findings).float()
        if extra.ndim != 2 or extra.shape[1] != text_dim:
            raise ValueError(f"new_findings must be [K, {text_dim}] embeddings, got {tuple(extra.shape)}")
        num_entities = len(PATHOLOGIES)
        self.register_buffer("new_finding_book", extra.clone(), persistent=False)
        outputs = [pathology_index(name) for name in names] + list(range(num_entities, num_entities + len(extra)))
        self.register_buffer("output_index", torch.tensor(outputs, dtype=torch.long), persistent=False)
        if len(extra):
            size = num_entities + len(extra)
            blocked = torch.zeros(size, size, dtype=torch.bool)
            blocked[:, num_entities:] = True  # no query attends to a new finding, not even the new finding itself
            self.query_mask = blocked
        self.num_outputs = len(outputs)

    def pathology_queries(self) -> torch.Tensor:
        """The 75 entity rows followed by the new findings ``[75 + K, text_dim]``."""
        return torch.cat([self.pathology_book, self.new_finding_book])

    def forward(self, image: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        _, pathology_part, grid = self.disentangle(image)
        decoded, _ = self.decode_pathology(self.pathology_projection(pathology_part), grid, need_weights=False)
        return self.existence_probabilities(decoded[:, self.output_index])

    @torch.no_grad()
    def predict(self, image: torch.Tensor) -> Prediction:
        """:meth:`MeDSLIP.predict` for this network's outputs (``findings``, then the new findings)."""
        return super().predict(image).select(self.output_index)
