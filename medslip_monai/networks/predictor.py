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
from medslip_monai.vocab import ANATOMIES, NON_LOCATIONS, PATHOLOGIES, pathology_index

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
        :meth:`predict` adds grounding maps and anatomical locations.
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
            self.register_buffer("query_mask", blocked, persistent=False)
        else:
            self.query_mask = None
        self.num_outputs = len(outputs)
        places = torch.tensor([name not in NON_LOCATIONS for name in ANATOMIES])
        self.register_buffer("place_mask", places, persistent=False)

    def _decode_pathology(
        self, pathology_tokens: torch.Tensor, need_weights: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        book = self.pathology_book
        if self.new_finding_book.shape[0] > 0:
            book = torch.cat([book, self.new_finding_book])
        queries = self.query_embedding(book).unsqueeze(0)  # shared by the batch until the first cross-attention
        return self.pathology_decoder(queries, pathology_tokens, need_weights, self.query_mask)

    def _probabilities(self, decoded: torch.Tensor) -> torch.Tensor:
        logits = self.pathology_classifier(decoded[:, self.output_index])
        return torch.softmax(logits.float(), dim=-1)[..., 1]

    def forward(self, image: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        _, pathology_part, _ = self.disentangle(image)
        decoded, _ = self._decode_pathology(self.pathology_projection(pathology_part), need_weights=False)
        return self._probabilities(decoded)

    @torch.no_grad()
    def predict(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Both streams: ``probabilities [B, N]``, grounding ``maps [B, N, h, w]`` (cross-attention averaged over
        heads and layers, the official construction) and ``locations [B, N, 51]``: for each finding, a distribution
        over the anatomy entities that name places (softmax of the finding's ICL scores with the anatomy queries;
        "unspecified" and "other" get 0). ICL is trained to score the anatomy x pathology cells a report states, so
        this reads "if the finding is there, where is it".
        """
        pathology_tokens, anatomy_tokens, grid = self.encode(image)
        decoded, maps = self._decode_pathology(pathology_tokens, need_weights=True)
        anatomy_queries = self.query_embedding(self.anatomy_book).unsqueeze(0)
        anatomy, _ = self.anatomy_decoder(anatomy_queries, anatomy_tokens)
        icl = self.icl_scale * anatomy @ decoded[:, self.output_index].transpose(1, 2)  # [B, 51, N]
        return {
            "probabilities": self._probabilities(decoded),
            "maps": maps.mean(dim=1)[:, self.output_index].unflatten(-1, grid),
            "locations": torch.softmax(icl.float().masked_fill(~self.place_mask[:, None], float("-inf")), 1).transpose(
                1, 2
            ),
        }
