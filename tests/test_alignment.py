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
"""Where a map says a finding is, it is: a finding drawn at a known token position gives a map whose peak is there,
through the trunk (stride, padding offsets), the inference preprocessing of a non-square file, map upsampling,
overlay drawing and the pointing-game rules; DICOM ``PatientOrientation`` is honoured with the masks and boxes
drawn on the stored pixels following the image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from PIL import Image

from medslip_monai.data import BoxesToMaskd, LoadLabelMapd, LoadXRayd
from medslip_monai.data.readers import DISPLAY_FLIPS, displayed_orientation, follow_display, orientation_flips
from medslip_monai.grounding import heat_maps, upsample_tokens
from medslip_monai.metrics import pointing_hits
from medslip_monai.networks import MeDSLIP
from medslip_monai.text import EntityBooks
from medslip_monai.visualize import display_grey, heat_overlay
from medslip_monai.vocab import ANATOMIES, PATHOLOGIES, pathology_index
from tests.conftest import BUNDLE
from tests.test_image_input import dicom

SIZE = 128  # network input
ROWS, COLUMNS = 240, 180  # the file: not square, not a multiple of the input


def receptive_centre(trunk: torch.nn.Module, token: tuple[int, int]) -> torch.Tensor:
    """Centroid ``(row, column)`` in input pixels of the gradient of one token's features, over random inputs."""
    weight = torch.zeros(SIZE, SIZE)
    for seed in range(3):
        image = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed)).requires_grad_(True)
        (gradient,) = torch.autograd.grad(trunk(image)[0, :, token[0], token[1]].sum(), image)
        weight += gradient[0].abs().sum(0)
    axis = torch.arange(SIZE, dtype=torch.float32)
    return torch.stack([(weight.sum(1) * axis).sum(), (weight.sum(0) * axis).sum()]) / weight.sum()


@pytest.mark.parametrize("stride", [16, 8])
def test_a_token_looks_at_the_top_left_corner_of_its_patch(stride):
    """The premise of ``grounding.upsample_tokens``: token (i, j) is centred on network pixel (s i, s j), not on its
    patch's centre (s i + s / 2 - 0.5); image borders pull the centroid of tokens near them inwards."""
    trunk = MeDSLIP(text_dim=8, backbone="resnet10", token_stride=stride).eval().trunk
    for pixel in [(48, 64), (64, 80)]:  # away from the borders
        token = (pixel[0] // stride, pixel[1] // stride)
        centre = receptive_centre(trunk, token)
        torch.testing.assert_close(centre, stride * torch.tensor(token, dtype=torch.float32), atol=stride / 4, rtol=0)


def network_pixel_to_file(row: float, column: float) -> tuple[float, float]:
    """Centre of network pixel (row, column) in the file's pixel coordinates (area resizing keeps pixel centres)."""
    return (row + 0.5) * ROWS / SIZE - 0.5, (column + 0.5) * COLUMNS / SIZE - 0.5


def blob_file(path, centre: tuple[float, float], half: float) -> None:
    """A dark file with a bright square of side ``2 half`` network pixels centred on network pixel ``centre``."""
    rows, columns = np.mgrid[:ROWS, :COLUMNS]
    net_rows, net_columns = (rows + 0.5) * SIZE / ROWS - 0.5, (columns + 0.5) * SIZE / COLUMNS - 0.5
    inside = (np.abs(net_rows - centre[0]) <= half) & (np.abs(net_columns - centre[1]) <= half)
    Image.fromarray((inside * 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def pointer(tmp_path_factory):
    """The bundle's inference preprocessing and a MeDSLIP (ResNet-10, stride 16, 8 x 8 tokens) whose pathology
    cross-attention is set to look for a bright square: every head's score is the dot product of each token with the
    direction a square at token (5, 2) moves the tokens; nothing in it knows where the square is."""
    folder = tmp_path_factory.mktemp("alignment")
    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "inference.json"))
    parser.update({"image_size": SIZE})
    preprocessing = parser.get_parsed_content("preprocessing")
    torch.manual_seed(0)
    books = EntityBooks(torch.randn(len(PATHOLOGIES), 8), torch.randn(len(ANATOMIES), 8))
    network = MeDSLIP(books=books, backbone="resnet10").eval()

    def tokens(path):
        image = torch.as_tensor(preprocessing({"image": str(path)})["image"])[None]
        return network.encode(image)[0][0]  # [N, d_model]

    blob_file(folder / "calibration.png", (16 * 5, 16 * 2), 8)
    Image.fromarray(np.zeros((ROWS, COLUMNS), np.uint8)).save(folder / "empty.png")
    direction = tokens(folder / "calibration.png")[5 * 8 + 2] - tokens(folder / "empty.png")[5 * 8 + 2]
    direction = direction / direction.norm()
    d_model, heads = direction.numel(), 4
    with torch.no_grad():
        for layer in network.pathology_decoder.layers:
            weight, bias = layer.cross_attn.in_proj_weight, layer.cross_attn.in_proj_bias
            weight[: 2 * d_model].zero_()
            bias[: 2 * d_model].zero_()
            for head in range(heads):
                first = head * d_model // heads
                bias[first] = 200.0  # every query asks the same: how far along the direction is this token
                weight[d_model + first] = direction
    return network, preprocessing, folder


def test_a_finding_drawn_at_a_token_is_found_there_through_the_whole_path(pointer):
    network, preprocessing, folder = pointer
    token = (2, 5)
    centre = (16 * token[0], 16 * token[1])  # network pixels where the token looks
    blob_file(folder / "finding.png", centre, 8)
    image = preprocessing({"image": str(folder / "finding.png")})["image"]
    with torch.no_grad():
        maps = network.predict(torch.as_tensor(image)[None]).maps[:, [pathology_index("effusion")]]  # [1, 1, 8, 8]
    assert divmod(int(maps[0, 0].flatten().argmax()), 8) == token

    expected = torch.tensor(network_pixel_to_file(*centre))
    heat = heat_maps(maps[0], (ROWS, COLUMNS))[0]
    peak = torch.tensor(divmod(int(heat.flatten().argmax()), COLUMNS), dtype=torch.float32)
    cell = torch.tensor([16 * ROWS / SIZE, 16 * COLUMNS / SIZE])
    assert ((peak - expected).abs() <= cell / 4).all(), (peak, expected)

    loaded = LoadXRayd(keys="image")({"image": str(folder / "finding.png")})["image"]
    overlay = heat_overlay(loaded, heat)
    drawn = (overlay - display_grey(loaded)).abs().sum(0)
    hot = torch.nonzero(drawn >= drawn.max() / 2).float()
    assert ((hot.mean(0) - expected).abs() <= cell / 4).all()

    def mask(row0: int, row1: int, column0: int, column1: int) -> torch.Tensor:
        region = torch.zeros(1, 1, SIZE, SIZE)
        region[..., row0:row1, column0:column1] = 1
        return region

    on_token = mask(centre[0] - 8, centre[0] + 8, centre[1] - 8, centre[1] + 8)
    next_token = mask(centre[0] + 8, centre[0] + 24, centre[1] + 8, centre[1] + 24)
    small_up_left = mask(centre[0] - 6, centre[0], centre[1] - 6, centre[1])
    for mode in ("patch", "centred", "pixel"):
        assert pointing_hits(maps, on_token, mode)[0].item(), mode
    for mode in ("centred", "pixel"):
        assert not pointing_hits(maps, next_token, mode)[0].item(), mode
        assert pointing_hits(maps, small_up_left, mode)[0].item(), mode
    # The released rule draws each token on the patch below and right of where it looks: it credits the region
    # half a token down-right and misses a small finding just up-left of the token (docs/decisions.md).
    assert pointing_hits(maps, next_token, "patch")[0].item()
    assert not pointing_hits(maps, small_up_left, "patch")[0].item()


def test_upsampled_tokens_sit_where_they_look_and_keep_their_values():
    maps = torch.rand(2, 3, 4, 6)
    up = upsample_tokens(maps, (32, 48))
    assert up.shape == (2, 3, 32, 48) and float(up.min()) >= float(maps.min()) and float(up.max()) <= maps.max()
    # token (i, j) sits on the corner of pixel (8 i, 8 j), 1 / 16 of a token from its centre along each axis
    torch.testing.assert_close(up[..., ::8, ::8], maps, atol=2 / 16, rtol=0)
    one = torch.zeros(4, 6)
    one[1, 2] = 1
    peak = divmod(int(upsample_tokens(one, (32, 48)).flatten().argmax()), 48)
    assert peak[0] in (7, 8) and peak[1] in (15, 16)


@pytest.mark.parametrize(
    "orientation, flips, shown",
    [
        (["L", "F"], (False, False), ("L", "F")),
        (["R", "F"], (False, True), ("L", "F")),
        (["L", "H"], (True, False), ("L", "F")),
        (["R", "H"], (True, True), ("L", "F")),
        (["RH", "FL"], (False, True), ("LF", "FL")),
        (["A", "F"], (False, False), ("A", "F")),  # a lateral view: nothing to mirror
        (["L"], (False, False), None),
    ],
)
def test_patient_orientation_to_display_flips(orientation, flips, shown):
    assert orientation_flips(orientation) == flips
    if shown:
        assert displayed_orientation(orientation) == shown


def test_dicom_stored_mirrored_is_shown_with_the_patients_right_on_the_left_and_its_masks_follow(tmp_path):
    shown = np.zeros((64, 48), np.uint16)
    shown[10:20, 5:15] = 4000  # a finding on the image's left, upper part, as a viewer shows the film
    dicom(tmp_path / "as_shown.dcm", shown, bits=12, PatientOrientation=["L", "F"])
    dicom(tmp_path / "mirrored.dcm", shown[:, ::-1], bits=12, PatientOrientation=["R", "F"])
    dicom(tmp_path / "upside_down.dcm", shown[::-1, ::-1], bits=12, PatientOrientation=["R", "H"])
    stored_mask = (shown[:, ::-1] > 0).astype(np.uint8) * 255  # drawn on the stored pixels of mirrored.dcm
    Image.fromarray(stored_mask).save(tmp_path / "mask.png")
    reference = LoadXRayd(keys="image")({"image": str(tmp_path / "as_shown.dcm")})["image"]
    for name in ("mirrored.dcm", "upside_down.dcm"):
        loaded = LoadXRayd(keys="image")({"image": str(tmp_path / name)})["image"]
        torch.testing.assert_close(loaded, reference, check_stride=False)
        assert loaded.meta[DISPLAY_FLIPS].any()
    raw = LoadXRayd(keys="image", orient=False)({"image": str(tmp_path / "mirrored.dcm")})["image"]
    torch.testing.assert_close(raw[0], torch.from_numpy(shown[:, ::-1].astype(np.float32)), check_stride=False)

    data = LoadXRayd(keys="image")({"image": str(tmp_path / "mirrored.dcm"), "mask": str(tmp_path / "mask.png")})
    data = LoadLabelMapd(keys="mask")(data)
    assert torch.equal(data["mask"][0] > 0, torch.from_numpy(shown > 0))
    boxes = BoxesToMaskd(keys="boxes", output_key="box")({**data, "boxes": [[48 - 15, 10, 10, 10]]})  # stored x, y
    assert torch.equal(boxes["box"][0] > 0, torch.from_numpy(shown > 0))
    assert torch.equal(follow_display(follow_display(data["mask"], data["image"]), data["image"]), data["mask"])
