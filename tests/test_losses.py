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
"""Losses: labels from the matrix, masking of unmentioned cells, and batched ProtoCL against a plain loop."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from medslip_monai.data import SampleProtoCLNegativesd
from medslip_monai.losses import MeDSLIPLoss, existence_labels, existence_loss, icl_loss, protocl_loss


def random_matrix(batch: int, anatomies: int, pathologies: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    matrix = rng.choice([-1, 0, 1], p=[0.9, 0.05, 0.05], size=(batch, anatomies, pathologies))
    matrix[0] = -1  # one sample with nothing mentioned
    return torch.from_numpy(matrix.astype(np.int8))


def test_existence_labels_follow_the_official_rule():
    matrix = torch.full((1, 3, 4), -1, dtype=torch.int8)
    matrix[0, 0, 0] = 1
    matrix[0, 1, 0] = 0  # present somewhere wins over negated elsewhere
    matrix[0, 2, 1] = 0
    pathology, anatomy = existence_labels(matrix)
    assert pathology.tolist() == [[1, 0, -1, -1]]
    assert anatomy.tolist() == [[1, 0, 0]]


def test_existence_loss_ignores_unmentioned_and_never_nans():
    logits = torch.randn(2, 5, 2)
    labels = torch.tensor([[1, 0, -1, -1, 1], [-1, -1, -1, -1, 0]])
    valid = labels >= 0
    expected = F.cross_entropy(logits[valid], labels[valid])
    assert torch.allclose(existence_loss(logits, labels), expected)
    assert existence_loss(logits, torch.full_like(labels, -1)).item() == 0.0


def test_icl_loss_is_bce_over_known_cells():
    logits = torch.randn(2, 3, 4)
    matrix = torch.tensor(np.random.default_rng(1).choice([-1, 0, 1], size=(2, 3, 4)), dtype=torch.int8)
    known = matrix >= 0
    expected = F.binary_cross_entropy_with_logits(logits[known], matrix[known].float())
    assert torch.allclose(icl_loss(logits, matrix), expected)


def protocl_loop(projected: torch.Tensor, book: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor):
    """The plain formulation: per sample and query, build the prototype vector and score each candidate."""
    losses = []
    for b in range(projected.shape[0]):
        for q in range(projected.shape[1]):
            rows = torch.nonzero(positives[b, q]).flatten()
            if rows.numel() == 0:
                continue
            candidates = [book[rows].mean(0)] + [book[int(i)] for i in negatives[b, q] if i >= 0]
            scores = torch.stack([projected[b, q] @ c for c in candidates])
            losses.append(F.cross_entropy(scores[None], torch.zeros(1, dtype=torch.long)))
    return torch.stack(losses).mean()


def test_batched_protocl_equals_loop_formulation():
    torch.manual_seed(0)
    batch, anatomies, pathologies, width = 4, 51, 75, 768
    matrix = random_matrix(batch, anatomies, pathologies, seed=3)
    matrix[1, :, 5] = 1  # a pathology present everywhere: no anatomy left as a negative
    sampler = SampleProtoCLNegativesd(keys="matrix")
    sampler.set_random_state(7)
    sampled = [sampler({"matrix": m}) for m in matrix]
    pathology_negatives = torch.stack([s["pathology_negatives"] for s in sampled])
    anatomy_negatives = torch.stack([s["anatomy_negatives"] for s in sampled])
    for queries, entries, positives, negatives in (
        (pathologies, anatomies, matrix.transpose(1, 2) == 1, pathology_negatives),
        (anatomies, pathologies, matrix == 1, anatomy_negatives),
    ):
        projected = torch.randn(batch, queries, width)
        book = torch.randn(entries, width)
        batched = protocl_loss(projected @ book.T, positives, negatives)
        looped = protocl_loop(projected.double(), book.double(), positives, negatives)
        assert abs(batched.item() - looped.item()) <= 1e-5, (batched.item(), looped.item())


def test_protocl_is_zero_without_positives_and_has_gradients():
    scores = torch.randn(2, 4, 6, requires_grad=True)
    negatives = torch.zeros(2, 4, 7, dtype=torch.long)
    loss = protocl_loss(scores, torch.zeros(2, 4, 6, dtype=torch.bool), negatives)
    assert loss.item() == 0.0
    loss.backward()
    assert scores.grad is not None and torch.isfinite(scores.grad).all()


def test_medslip_loss_weights_and_terms():
    torch.manual_seed(0)
    matrix = random_matrix(3, 51, 75, seed=5)
    sampler = SampleProtoCLNegativesd(keys="matrix")
    sampled = [sampler({"matrix": m}) for m in matrix]
    targets = {
        "matrix": matrix,
        "pathology_negatives": torch.stack([s["pathology_negatives"] for s in sampled]),
        "anatomy_negatives": torch.stack([s["anatomy_negatives"] for s in sampled]),
    }
    outputs = {
        "pathology_logits": torch.randn(3, 75, 2),
        "anatomy_logits": torch.randn(3, 51, 2),
        "pathology_to_anatomy": torch.randn(3, 75, 51),
        "anatomy_to_pathology": torch.randn(3, 51, 75),
        "icl_logits": torch.randn(3, 51, 75),
    }
    loss = MeDSLIPLoss(protocl_weight=0.5, icl_weight=2.0)
    total = loss(outputs, targets)
    t = loss.last_terms
    expected = t["exist_pathology"] + t["exist_anatomy"] + 0.5 * (t["protocl_pathology"] + t["protocl_anatomy"])
    assert torch.allclose(total, expected + 2.0 * t["icl"])
    assert all(torch.isfinite(v) for v in t.values())


def test_medslip_loss_names_a_missing_target():
    try:
        MeDSLIPLoss()({}, {"matrix": torch.zeros(1, 51, 75)})
    except KeyError as e:
        assert "pathology_negatives" in str(e) and "SampleProtoCLNegativesd" in str(e)
    else:
        raise AssertionError("expected KeyError")
