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
"""Dictionary transforms: triplets to matrix, ProtoCL negatives, laterality-aware flips, channels, label maps."""

from __future__ import annotations

import pytest
import torch

from medslip_monai.data import (
    AsThreeChannelsd,
    DecodeFindingMasksd,
    RandLateralFlipd,
    SampleProtoCLNegativesd,
    TripletsToMatrixd,
    triplets_to_matrix,
)
from medslip_monai.vocab import anatomy_index, pathology_index


def test_triplets_to_matrix_values_and_precedence():
    matrix = triplets_to_matrix(
        [["left_pleural", "effusion", 1], ["unspecified", "pneumothorax", 0], ["left_pleural", "effusion", 0]]
    )
    assert matrix.shape == (51, 75) and matrix.dtype == torch.int8
    assert matrix[anatomy_index("left_pleural"), pathology_index("effusion")] == 1
    assert matrix[anatomy_index("unspecified"), pathology_index("pneumothorax")] == 0
    assert int((matrix >= 0).sum()) == 2


@pytest.mark.parametrize(
    "triplet, message",
    [
        (["left_lungg", "effusion", 1], "left_lungg"),
        (["left_pleural", "effusionn", 1], "effusionn"),
        (["left_pleural", "effusion", 2], "value 2"),
        (["left_pleural", "effusion"], "not [anatomy, pathology, value]"),
    ],
)
def test_bad_triplets_are_reported_with_the_item(triplet, message):
    with pytest.raises(ValueError) as error:
        TripletsToMatrixd()({"image": "/data/a.png", "triplets": [triplet]})
    assert message in str(error.value) and "/data/a.png" in str(error.value)


def test_triplets_to_matrixd_drops_the_ragged_source():
    out = TripletsToMatrixd()({"triplets": [["trachea", "tube", 1]]})
    assert "triplets" not in out and out["matrix"].shape == (51, 75)


def test_negatives_are_never_positive_and_distinct():
    matrix = torch.full((51, 75), -1, dtype=torch.int8)
    matrix[anatomy_index("left_pleural"), pathology_index("effusion")] = 1
    matrix[anatomy_index("left_costophrenic"), pathology_index("effusion")] = 1
    matrix[:, pathology_index("nodule")] = 1  # every anatomy positive: no negative exists
    sampler = SampleProtoCLNegativesd(keys="matrix", num_negatives=7)
    sampler.set_random_state(0)
    out = sampler({"matrix": matrix})
    pathology_negatives, anatomy_negatives = out["pathology_negatives"], out["anatomy_negatives"]
    assert pathology_negatives.shape == (75, 7) and anatomy_negatives.shape == (51, 7)
    effusion = pathology_negatives[pathology_index("effusion")]
    assert len(set(effusion.tolist())) == 7
    assert anatomy_index("left_pleural") not in effusion.tolist()
    assert anatomy_index("left_costophrenic") not in effusion.tolist()
    assert (pathology_negatives[pathology_index("nodule")] == -1).all()
    for a in range(51):
        chosen = anatomy_negatives[a][anatomy_negatives[a] >= 0]
        assert not (matrix[a, chosen] == 1).any()


def test_negative_sampling_is_seeded_and_varies():
    matrix = torch.full((51, 75), -1, dtype=torch.int8)
    first = SampleProtoCLNegativesd().set_random_state(3)({"matrix": matrix})["pathology_negatives"]
    again = SampleProtoCLNegativesd().set_random_state(3)({"matrix": matrix})["pathology_negatives"]
    other = SampleProtoCLNegativesd().set_random_state(4)({"matrix": matrix})["pathology_negatives"]
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_lateral_flip_mirrors_image_and_swaps_sides():
    image = torch.zeros(1, 4, 6)
    image[0, :, 0] = 1.0  # bright column on the image's left (the patient's right)
    matrix = triplets_to_matrix([["right_costophrenic", "effusion", 1], ["upper_left_lobe", "consolidation", 1]])
    out = RandLateralFlipd(keys="image", prob=1.0)({"image": image, "matrix": matrix})
    assert out["image"][0, :, -1].eq(1).all() and out["image"][0, :, 0].eq(0).all()
    flipped = out["matrix"]
    assert flipped[anatomy_index("left_costophrenic"), pathology_index("effusion")] == 1
    assert flipped[anatomy_index("right_costophrenic"), pathology_index("effusion")] == -1
    assert flipped[anatomy_index("upper_right_lobe"), pathology_index("consolidation")] == 1


def test_mirror_negatives_mark_the_unmentioned_mirror_place_absent():
    triplets = [
        ["left_costophrenic", "effusion", 1],  # mirror unmentioned: becomes absent there
        ["left_upper_lung", "nodule", 1],
        ["right_upper_lung", "nodule", 1],  # both sides stated: kept
        ["middle_right_lobe", "consolidation", 1],  # no mirror place: nothing added
        ["unspecified", "edema", 1],
    ]
    plain = TripletsToMatrixd()({"triplets": triplets})["matrix"]
    mirrored = TripletsToMatrixd(mirror_negatives=True)({"triplets": triplets})["matrix"]
    effusion, nodule = pathology_index("effusion"), pathology_index("nodule")
    assert plain[anatomy_index("right_costophrenic"), effusion] == -1
    assert mirrored[anatomy_index("right_costophrenic"), effusion] == 0
    assert mirrored[anatomy_index("left_costophrenic"), effusion] == 1
    assert (
        mirrored[anatomy_index("right_upper_lung"), nodule] == 1
        and mirrored[anatomy_index("left_upper_lung"), nodule] == 1
    )
    changed = (plain != mirrored).nonzero().tolist()
    assert changed == [[anatomy_index("right_costophrenic"), effusion]] and mirrored.dtype == torch.int8


def test_lateral_flip_skips_samples_with_one_sided_anatomy():
    image = torch.arange(6.0).reshape(1, 1, 6)
    matrix = triplets_to_matrix([["middle_right_lobe", "consolidation", 1]])
    out = RandLateralFlipd(keys="image", prob=1.0)({"image": image, "matrix": matrix})
    assert torch.equal(out["image"], image) and torch.equal(out["matrix"], matrix)


@pytest.mark.parametrize("channels", [1, 3])
def test_as_three_channels_repeats_grey_and_keeps_colour(channels):
    image = torch.rand(channels, 5, 5)
    out = AsThreeChannelsd(keys="image")({"image": image})["image"]
    assert out.shape == (3, 5, 5)
    assert torch.equal(out[channels - 1], image[-1]) and torch.equal(out[0], image[0])


@pytest.mark.parametrize("channels", [2, 4, 7])
def test_as_three_channels_rejects_other_channel_counts(channels):
    with pytest.raises(ValueError, match="channels"):
        AsThreeChannelsd(keys="image")({"image": torch.rand(channels, 5, 5)})


def test_decode_finding_masks():
    packed = torch.tensor([[[0, 1, 2], [3, 4, 5]]], dtype=torch.float32)
    masks = DecodeFindingMasksd(keys="labelmap", num_findings=3)({"labelmap": packed})["labelmap"]
    assert masks.shape == (3, 2, 3)
    assert masks[0].tolist() == [[0, 1, 0], [1, 0, 1]]
    assert masks[1].tolist() == [[0, 0, 1], [1, 0, 0]]
    assert masks[2].tolist() == [[0, 0, 0], [0, 1, 1]]
