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
"""MeDSLIP network: shapes, the official architecture's sizes, attention maps, buffers and gradients."""

from __future__ import annotations

import pytest
import torch

from medslip_monai.networks import MeDSLIP, ResNetTrunk
from medslip_monai.text import EntityBooks


def books(width: int = 384) -> EntityBooks:
    torch.manual_seed(0)
    return EntityBooks(torch.randn(75, width), torch.randn(51, width))


@pytest.mark.parametrize("backbone, channels", [("resnet18", 256), ("resnet50", 1024)])
def test_trunk_reaches_layer3(backbone, channels):
    trunk = ResNetTrunk(backbone)
    assert trunk.out_channels == channels
    stages = trunk.stages(torch.zeros(1, 3, 64, 64))
    assert [s.shape[-1] for s in stages] == [32, 16, 8, 4]
    assert stages[-1].shape[1] == channels


def test_paper_configuration_tokens_and_parameter_count():
    network = MeDSLIP(books(768), backbone="resnet50")
    trunk = sum(p.numel() for p in network.trunk.parameters())
    total = sum(p.numel() for p in network.parameters())
    assert trunk == pytest.approx(8.54e6, rel=0.01)  # ResNet-50 up to layer3
    assert total == pytest.approx(21.2e6, rel=0.02)  # the official release's size (85 MB in fp32)
    tokens, _, grid = network.encode(torch.zeros(1, 3, 224, 224))
    assert grid == (14, 14) and tokens.shape == (1, 196, 256)


def test_forward_shapes_and_attention():
    network = MeDSLIP(books(), backbone="resnet18").eval()
    image = torch.randn(2, 3, 96, 96)
    out = network(image)
    assert out["pathology_logits"].shape == (2, 75, 2)
    assert out["anatomy_logits"].shape == (2, 51, 2)
    assert out["pathology_to_anatomy"].shape == (2, 75, 51)
    assert out["anatomy_to_pathology"].shape == (2, 51, 75)
    assert out["icl_logits"].shape == (2, 51, 75)
    assert "pathology_attention" not in out
    with_maps = network(image, return_attention=True)
    attention = with_maps["pathology_attention"]
    assert attention.shape == (2, 4, 75, 6, 6) and with_maps["anatomy_attention"].shape == (2, 4, 51, 6, 6)
    assert torch.allclose(attention.sum((-2, -1)), torch.ones(2, 4, 75), atol=1e-5)  # softmax over the tokens
    assert torch.allclose(with_maps["pathology_logits"], out["pathology_logits"], atol=1e-5)


def test_books_are_buffers_and_round_trip_without_text_encoder():
    network = MeDSLIP(books(), backbone="resnet18")
    state = network.state_dict()
    assert "pathology_book" in state and "anatomy_book" in state
    assert not any(name.endswith("_book") for name, _ in network.named_parameters())
    empty = MeDSLIP(text_dim=384, backbone="resnet18")
    empty.load_state_dict(state, strict=True)
    assert torch.equal(empty.pathology_book, network.pathology_book)


def test_every_parameter_gets_a_gradient():
    network = MeDSLIP(books(), backbone="resnet18").train()
    out = network(torch.randn(2, 3, 64, 64))
    sum(v.float().sum() for v in out.values()).backward()
    missing = [n for n, p in network.named_parameters() if p.grad is None]
    assert missing == []


def test_bad_books_are_rejected():
    with pytest.raises(ValueError, match="75 pathology"):
        MeDSLIP(EntityBooks(torch.zeros(10, 384), torch.zeros(51, 384)), backbone="resnet18")
    with pytest.raises(ValueError, match="text_dim"):
        MeDSLIP(backbone="resnet18")


def test_official_init_and_logit_scales_are_available():
    official = MeDSLIP(books(), backbone="resnet18", init="official", icl_scale=1.0, protocl_scale=1.0)
    bias = official.mask_generator.bias.detach()  # PyTorch's default, as the official code keeps it
    assert 0 < float(bias.abs().max()) <= 256**-0.5 and float(bias.std()) > 0.01
    assert official.query_embedding.weight.std().item() == pytest.approx(0.02, rel=0.1)
    ours = MeDSLIP(books(), backbone="resnet18")
    assert torch.all(ours.mask_generator.bias == 0.5)  # both streams start from half of every token
    assert ours.icl_scale == pytest.approx(256**-0.5) and ours.protocl_scale == pytest.approx(384**-0.5)
    with pytest.raises(ValueError):
        MeDSLIP(books(), backbone="resnet18", init="kaiming")


def test_logit_scales_multiply_the_heads():
    torch.manual_seed(0)
    plain = MeDSLIP(books(), backbone="resnet18", icl_scale=1.0, protocl_scale=1.0).eval()
    scaled = MeDSLIP(books(), backbone="resnet18", icl_scale=0.5, protocl_scale=0.25).eval()
    scaled.load_state_dict(plain.state_dict())
    image = torch.randn(1, 3, 64, 64)
    a, b = plain(image), scaled(image)
    assert torch.allclose(b["icl_logits"], 0.5 * a["icl_logits"], atol=1e-5)
    assert torch.allclose(b["pathology_to_anatomy"], 0.25 * a["pathology_to_anatomy"], atol=1e-5)
    assert torch.allclose(b["pathology_logits"], a["pathology_logits"])


@pytest.mark.parametrize("book_norm", [1.0, 15.0])
def test_queries_start_with_unit_variance_whatever_the_book_norm(book_norm):
    torch.manual_seed(0)
    raw = books()
    scaled = EntityBooks(
        book_norm * torch.nn.functional.normalize(raw.pathology, dim=-1),
        book_norm * torch.nn.functional.normalize(raw.anatomy, dim=-1),
    )
    network = MeDSLIP(scaled, backbone="resnet10")
    queries = network.query_embedding(torch.cat([network.pathology_book, network.anatomy_book]))
    assert queries.std().item() == pytest.approx(1.0, rel=0.15)


def test_channels_last_trunk_gives_the_same_features():
    torch.manual_seed(0)
    plain = ResNetTrunk("resnet10", channels_last=False).eval()
    fast = ResNetTrunk("resnet10").eval()
    fast.load_state_dict(plain.state_dict())
    image = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(plain(image), fast(image), atol=1e-5)
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(plain.stages(image), fast.stages(image)))


@pytest.mark.parametrize("backbone", ["resnet10", "resnet50"])
def test_stride_8_tokens_share_the_weights_of_stride_16(backbone):
    """A 4x finer token grid from the same parameters: weights load strictly either way, predictions use the grid."""
    coarse = MeDSLIP(books(), backbone=backbone).eval()
    fine = MeDSLIP(books(), backbone=backbone, token_stride=8).eval()
    fine.load_state_dict(coarse.state_dict())  # strict
    assert fine.trunk(torch.zeros(1, 3, 64, 64)).shape[-2:] == (8, 8)
    assert [s.shape[-1] for s in fine.trunk.stages(torch.zeros(1, 3, 64, 64))] == [32, 16, 8, 8]
    assert fine.predict(torch.randn(1, 3, 64, 64)).maps.shape == (1, 75, 8, 8)
    with pytest.raises(ValueError):
        MeDSLIP(books(), backbone=backbone, token_stride=4)


def test_sine_positions_are_monais_and_reach_the_keys_only():
    from monai.networks.blocks.pos_embed_utils import build_sincos_position_embedding

    from medslip_monai.networks.medslip import sine_positions

    with pytest.warns(UserWarning):  # MONAI calls torch.meshgrid without ``indexing``
        expected = build_sincos_position_embedding([5, 7], 256, spatial_dims=2).data
    assert torch.equal(sine_positions(5, 7, 256), expected)
    plain = MeDSLIP(books(), backbone="resnet10").eval()
    placed = MeDSLIP(books(), backbone="resnet10", positional_encoding="sine").eval()
    placed.load_state_dict(plain.state_dict())  # no parameters of its own
    image = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(placed(image)["pathology_logits"], plain(image)["pathology_logits"])
        # shifting every key by the same code changes nothing: the codes act through their differences
        layer = plain.pathology_decoder.layers[0]
        queries, memory = torch.randn(1, 5, 256), torch.randn(2, 16, 256)
        shift = torch.randn(1, 1, 256).expand(1, 16, 256)
        torch.testing.assert_close(layer(queries, memory, memory_position=shift)[0], layer(queries, memory)[0])
