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
"""MeDSLIP losses as batched tensor code: existence cross-entropy, ProtoCL in both directions, ICL.

The 51x75 matrix ``M[b, a, p]`` holds 1 (present), 0 (negated) and -1 (unmentioned) for anatomy ``a`` and
pathology ``p``; every loss ignores unmentioned cells as the official code does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["existence_labels", "existence_loss", "protocl_loss", "icl_loss", "MeDSLIPLoss"]


def existence_labels(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-entity labels from the matrix: 1 if any cell of the entity is 1, else 0 if any is 0, else -1.

    Args:
        matrix: ``[B, A, P]`` with values in {-1, 0, 1}.

    Returns:
        pathology labels ``[B, P]`` and anatomy labels ``[B, A]`` (int64).
    """

    def reduce(dim: int) -> torch.Tensor:
        present, negated = (matrix == 1).any(dim), (matrix == 0).any(dim)
        labels = torch.full(present.shape, -1, dtype=torch.long, device=matrix.device)
        return labels.masked_fill(negated, 0).masked_fill(present, 1)

    return reduce(1), reduce(2)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values[mask]``; 0 (with a gradient path) when the mask is empty, so a batch never yields NaN."""
    weights = mask.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


def existence_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of 2-way existence logits ``[B, Q, 2]`` against labels ``[B, Q]``, ignoring label -1."""
    per_query = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten().clamp(min=0), reduction="none")
    return _masked_mean(per_query, labels.flatten() >= 0)


def protocl_loss(scores: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """Prototypical contrastive loss for one stream.

    For every query with at least one positive, the candidates are the prototype (mean text embedding of its
    positive entries in the other book) and the sampled negatives; the loss is the cross-entropy of picking the
    prototype. Because the score is a dot product, the prototype's score is the mean of the positives' scores,
    so no embedding is gathered or repeated per query.

    Args:
        scores: ``[B, Q, K]`` projected query features dotted with each of the ``K`` entries of the other book.
        positives: ``[B, Q, K]`` boolean, the matrix cells equal to 1 oriented as queries x entries.
        negatives: ``[B, Q, N]`` int64 entry indices sampled from non-positive cells; -1 marks an empty slot.

    Returns:
        mean loss over queries with a positive (0 if the batch has none).
    """
    scores = scores.float()
    weights = positives.to(scores.dtype)
    count = weights.sum(-1)
    prototype_score = (scores * weights).sum(-1) / count.clamp(min=1.0)
    negative_scores = scores.gather(-1, negatives.clamp(min=0)).masked_fill(negatives < 0, float("-inf"))
    candidates = torch.cat([prototype_score.unsqueeze(-1), negative_scores], dim=-1)
    per_query = -torch.log_softmax(candidates, dim=-1)[..., 0]
    return _masked_mean(per_query, count > 0)


def icl_loss(icl_logits: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of anatomy x pathology query dot products ``[B, A, P]`` over the known matrix cells."""
    known = matrix >= 0
    per_cell = F.binary_cross_entropy_with_logits(
        icl_logits.float(), matrix.clamp(min=0).to(torch.float32), reduction="none"
    )
    return _masked_mean(per_cell, known)


class MeDSLIPLoss(nn.Module):
    """``L = L_exist(pathology) + L_exist(anatomy) + a * (ProtoCL(pathology) + ProtoCL(anatomy)) + b * ICL``.

    The official code fixes ``a = b = 1``; both are configurable here. Called as ``loss(outputs, targets)`` with the
    network's output dict and a targets dict holding ``matrix [B, 51, 75]``, ``pathology_negatives [B, 75, N]`` and
    ``anatomy_negatives [B, 51, N]``. Returns the total; the detached terms of the last call are in ``last_terms``.

    Args:
        existence_weight: weight of both existence terms. Defaults to 1.
        protocl_weight: ``a``. Defaults to 1.
        icl_weight: ``b``. Defaults to 1.
    """

    def __init__(self, existence_weight: float = 1.0, protocl_weight: float = 1.0, icl_weight: float = 1.0) -> None:
        super().__init__()
        self.existence_weight = existence_weight
        self.protocl_weight = protocl_weight
        self.icl_weight = icl_weight
        self.last_terms: dict[str, torch.Tensor] = {}

    def forward(self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
        try:
            matrix = targets["matrix"]
            pathology_negatives, anatomy_negatives = targets["pathology_negatives"], targets["anatomy_negatives"]
        except KeyError as e:
            raise KeyError(
                f"MeDSLIPLoss needs target {e.args[0]!r}: build it with TripletsToMatrixd and "
                "SampleProtoCLNegativesd in the training transforms"
            ) from None
        pathology_labels, anatomy_labels = existence_labels(matrix)
        terms = {
            "exist_pathology": existence_loss(outputs["pathology_logits"], pathology_labels),
            "exist_anatomy": existence_loss(outputs["anatomy_logits"], anatomy_labels),
            "protocl_pathology": protocl_loss(
                outputs["pathology_to_anatomy"], matrix.transpose(1, 2) == 1, pathology_negatives
            ),
            "protocl_anatomy": protocl_loss(outputs["anatomy_to_pathology"], matrix == 1, anatomy_negatives),
            "icl": icl_loss(outputs["icl_logits"], matrix),
        }
        total = (
            self.existence_weight * (terms["exist_pathology"] + terms["exist_anatomy"])
            + self.protocl_weight * (terms["protocl_pathology"] + terms["protocl_anatomy"])
            + self.icl_weight * terms["icl"]
        )
        self.last_terms = {name: value.detach() for name, value in terms.items()}
        return total
