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
"""The MeDSLIP network: ResNet trunk, disentangling layer, two query decoders and their heads."""

from __future__ import annotations

import torch
from monai.networks import nets as monai_nets
from monai.utils import look_up_option
from torch import nn

from medslip_monai.grounding import grounding_maps
from medslip_monai.locations import place_distribution
from medslip_monai.networks.prediction import Prediction
from medslip_monai.text import EntityBooks
from medslip_monai.vocab import ANATOMIES, PATHOLOGIES

__all__ = [
    "ResNetTrunk",
    "QueryDecoderLayer",
    "QueryDecoder",
    "MeDSLIP",
    "SUPPORTED_BACKBONES",
    "INITS",
    "TOKEN_STRIDES",
    "POSITIONAL_ENCODINGS",
    "sine_positions",
]

SUPPORTED_BACKBONES = ("resnet10", "resnet18", "resnet34", "resnet50", "resnet101")
INITS = ("variance_preserving", "official")
#: Positions given to the decoders' cross-attention keys: none (the paper's) or fixed 2D sine-cosine codes.
POSITIONAL_ENCODINGS = ("none", "sine")


#: Strides of the trunk's output tokens: 16 (the paper's: 14 x 14 tokens at 224 px) or 8 (a 4x finer grid).
TOKEN_STRIDES = (16, 8)


def sine_positions(height: int, width: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Fixed 2D sine-cosine codes ``[1, height * width, dim]`` of a token grid (rows first), laid out as MONAI's
    ``build_sincos_position_embedding`` (sin and cos of the column, then of the row, each over ``dim / 4``
    frequencies), written in TorchScript-compatible operations."""
    if dim % 4 != 0:
        raise ValueError(f"sine position codes need a width divisible by 4, got {dim}")
    frequencies = 1.0 / temperature ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))
    rows = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width).reshape(-1, 1) * frequencies
    columns = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width).reshape(-1, 1) * frequencies
    return torch.cat([columns.sin(), columns.cos(), rows.sin(), rows.cos()], dim=1)[None]


class ResNetTrunk(nn.Module):
    """A MONAI 2D ResNet from the stem to ``layer3``, with torchvision's parameter layout.

    Args:
        backbone: one of ``SUPPORTED_BACKBONES``; ``resnet50`` (1024 output channels) is the paper's.
        in_channels: image channels. Defaults to 3.
        channels_last: keep kernels and activations in channels-last layout (default): the same numbers, but oneDNN
            and cuDNN convolutions run faster, and on CPU throughput no longer drops as the batch grows
            (``scripts/bench.py``).
        token_stride: 16 (default, the paper's) or 8: ``layer3`` keeps the resolution of ``layer2`` (its first block
            without stride, the later 3 x 3 convolutions dilated by 2, as torchvision's ``replace_stride_with_dilation``),
            so the tokens form a 4x finer grid. The parameters are the same, so any checkpoint loads either way.
    """

    def __init__(
        self, backbone: str = "resnet50", in_channels: int = 3, channels_last: bool = True, token_stride: int = 16
    ) -> None:
        super().__init__()
        backbone = look_up_option(backbone, SUPPORTED_BACKBONES)
        self.channels_last = channels_last
        self.token_stride = look_up_option(token_stride, TOKEN_STRIDES)
        resnet = getattr(monai_nets, backbone)(
            spatial_dims=2, n_input_channels=in_channels, conv1_t_stride=2, bias_downsample=False, num_classes=1
        )
        self.conv1, self.bn1, self.act, self.maxpool = resnet.conv1, resnet.bn1, resnet.act, resnet.maxpool
        self.layer1, self.layer2, self.layer3 = resnet.layer1, resnet.layer2, resnet.layer3
        if self.token_stride == 8:
            self._undo_last_stride()
        widths = [
            int((b.bn3 if hasattr(b, "bn3") else b.bn2).num_features)
            for b in (layer[-1] for layer in (self.layer1, self.layer2, self.layer3))
        ]
        self.stage_channels = (int(self.bn1.num_features), *widths)  # channels of the maps that ``stages`` returns
        self.out_channels = widths[-1]
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def _undo_last_stride(self) -> None:
        """``layer3`` at stride 1: no stride in its first block, dilation 2 in the 3 x 3 convolutions after it."""
        for index, block in enumerate(self.layer3):
            for conv in block.modules():
                if not isinstance(conv, nn.Conv2d):
                    continue
                if conv.stride != (1, 1):
                    conv.stride = (1, 1)
                elif index > 0 and conv.kernel_size == (3, 3):
                    conv.dilation, conv.padding = (2, 2), (2, 2)

    def _layout(self, image: torch.Tensor) -> torch.Tensor:
        return image.contiguous(memory_format=torch.channels_last) if self.channels_last else image

    def stages(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps after the stem (stride 2) and after layer1, layer2, layer3 (strides 4, 8, ``token_stride``)."""
        stem = self.act(self.bn1(self.conv1(self._layout(image))))
        c1 = self.layer1(self.maxpool(stem))
        c2 = self.layer2(c1)
        return [stem, c1, c2, self.layer3(c2)]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> ``[B, out_channels, H / token_stride, W / token_stride]``."""
        stem = self.act(self.bn1(self.conv1(self._layout(image))))
        return self.layer3(self.layer2(self.layer1(self.maxpool(stem))))


class QueryDecoderLayer(nn.Module):
    """Pre-norm transformer decoder layer (self-attention, cross-attention, feed-forward) as in DETR and MeDSLIP.

    The cross-attention weights (averaged over heads) are returned when asked for; otherwise both attentions use
    PyTorch's fused kernels. ``query_mask [Q, Q]`` (True = may not attend) restricts the self-attention;
    ``memory_position [1 or B, N, D]``, when given, is added to the cross-attention keys only (as in DETR).
    """

    def __init__(self, d_model: int = 256, num_heads: int = 4, ffn_dim: int = 1024, dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.feed_forward = nn.Sequential(
            nn.Linear(d_model, ffn_dim), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(ffn_dim, d_model)
        )
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout1, self.dropout2, self.dropout3 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(
        self,
        queries: torch.Tensor,
        memory: torch.Tensor,
        need_weights: bool = False,
        query_mask: torch.Tensor | None = None,
        memory_position: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``queries [B or 1, Q, D]``, ``memory [B, N, D]`` -> (``[B, Q, D]``, cross-attention ``[B, Q, N]`` or None)."""
        x = self.norm1(queries)
        queries = queries + self.dropout1(self.self_attn(x, x, x, attn_mask=query_mask, need_weights=False)[0])
        if queries.shape[0] != memory.shape[0]:  # one query set shared by the batch: self-attention ran once
            queries = queries.expand(memory.shape[0], -1, -1)
        x = self.norm2(queries)
        keys = memory if memory_position is None else memory + memory_position
        attended, weights = self.cross_attn(x, keys, memory, need_weights=need_weights)
        queries = queries + self.dropout2(attended)
        queries = queries + self.dropout3(self.feed_forward(self.norm3(queries)))
        return queries, weights


class QueryDecoder(nn.Module):
    """A stack of :class:`QueryDecoderLayer` with a final LayerNorm."""

    def __init__(
        self, num_layers: int = 4, d_model: int = 256, num_heads: int = 4, ffn_dim: int = 1024, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(QueryDecoderLayer(d_model, num_heads, ffn_dim, dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(
        self,
        queries: torch.Tensor,
        memory: torch.Tensor,
        need_weights: bool = False,
        query_mask: torch.Tensor | None = None,
        memory_position: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns decoded queries ``[B, Q, D]`` and, if asked, cross-attention of every layer ``[B, L, Q, N]``."""
        maps: list[torch.Tensor] = []
        for layer in self.layers:
            queries, weights = layer(queries, memory, need_weights, query_mask, memory_position)
            if weights is not None:
                maps.append(weights)
        return self.norm(queries), (torch.stack(maps, 1) if need_weights else None)


class MeDSLIP(nn.Module):
    """Dual-stream MeDSLIP network (architecture of the official release).

    ResNet trunk to layer3 -> tokens ``[B, N, C]``; a per-token linear mask ``m`` (unbounded, as in the official
    code) splits them into pathology (``m * x``) and anatomy (``(1 - m) * x``) parts, each projected to ``d_model``
    by its own two-layer MLP. The frozen
    entity books (stored as buffers, so no text encoder is needed after construction) pass through one shared
    linear layer to become the queries of two decoders. Heads: 2-way existence logits per query, ProtoCL projections
    back to the text width (scored against the other stream's book) and ICL logits between the two query sets.

    Args:
        books: entity-book embeddings; omit and give ``text_dim`` to build an empty network for loading weights.
        text_dim: text width when ``books`` is omitted (384 for MiniLM, 768 for Bio_ClinicalBERT).
        backbone: trunk depth, see :class:`ResNetTrunk`. Defaults to the paper's ``resnet50``.
        d_model, num_layers, num_heads, ffn_dim, dropout: decoder sizes; defaults are the paper's 256, 4, 4, 1024, 0.1.
        in_channels: image channels. Defaults to 3.
        init: ``"variance_preserving"`` (default: LeCun-normal linear layers with zero biases, the query embedding
            scaled to the books' norm so queries start with unit variance, Xavier attention projections and the
            disentangling mask starting at one half) or ``"official"`` (the official code's: N(0, 0.02) weights for
            every linear and attention layer, biases left at PyTorch's defaults, so the mask starts near 0).
            Only the starting point differs; see ``docs/decisions.md`` for why the default trains much faster.
        icl_scale: factor on the ICL dot products; ``None`` (default) is ``d_model ** -0.5``, the official code 1.
        protocl_scale: factor on the ProtoCL scores; ``None`` (default) is ``text_dim ** -0.5``, the official code 1.
        token_stride: 16 (default, the paper's token grid) or 8 (a 4x finer grid, same parameters), see
            :class:`ResNetTrunk`.
        positional_encoding: ``"none"`` (default, the paper's: the decoders see no position) or ``"sine"``: fixed
            2D sine-cosine codes of the token grid (:func:`sine_positions`) added to both decoders' cross-attention
            keys. No parameters, so checkpoints load either way.

    Forward:
        ``image [B, in_channels, H, W]`` -> dict of tensors:
        ``pathology_logits [B, 75, 2]``, ``anatomy_logits [B, 51, 2]``, ``pathology_to_anatomy [B, 75, 51]`` and
        ``anatomy_to_pathology [B, 51, 75]`` (ProtoCL scores of every query against every entry of the other book),
        ``icl_logits [B, 51, 75]``; with ``return_attention=True`` also ``pathology_attention [B, L, 75, h, w]`` and
        ``anatomy_attention [B, L, 51, h, w]`` (cross-attention of each decoder layer, averaged over heads).
        :meth:`predict` gives what inference needs: probabilities, grounding maps and locations.
    """

    def __init__(
        self,
        books: EntityBooks | None = None,
        text_dim: int | None = None,
        backbone: str = "resnet50",
        d_model: int = 256,
        num_layers: int = 4,
        num_heads: int = 4,
        ffn_dim: int = 1024,
        dropout: float = 0.1,
        in_channels: int = 3,
        init: str = "variance_preserving",
        icl_scale: float | None = None,
        protocl_scale: float | None = None,
        token_stride: int = 16,
        positional_encoding: str = "none",
    ) -> None:
        super().__init__()
        if books is None:
            if text_dim is None:
                raise ValueError("give either the entity books or text_dim")
            books = EntityBooks(torch.zeros(len(PATHOLOGIES), text_dim), torch.zeros(len(ANATOMIES), text_dim))
        if books.pathology.shape[0] != len(PATHOLOGIES) or books.anatomy.shape[0] != len(ANATOMIES):
            raise ValueError(
                f"entity books must have {len(PATHOLOGIES)} pathology and {len(ANATOMIES)} anatomy rows, "
                f"got {tuple(books.pathology.shape)} and {tuple(books.anatomy.shape)}"
            )
        self.register_buffer("pathology_book", books.pathology.detach().float().clone())
        self.register_buffer("anatomy_book", books.anatomy.detach().float().clone())
        text_dim = books.dim

        self.trunk = ResNetTrunk(backbone, in_channels, token_stride=token_stride)
        channels = self.trunk.out_channels
        self.mask_generator = nn.Linear(channels, channels)
        self.pathology_projection = nn.Sequential(
            nn.Linear(channels, channels), nn.ReLU(inplace=True), nn.Linear(channels, d_model)
        )
        self.anatomy_projection = nn.Sequential(
            nn.Linear(channels, channels), nn.ReLU(inplace=True), nn.Linear(channels, d_model)
        )
        self.query_embedding = nn.Linear(text_dim, d_model)
        self.pathology_decoder = QueryDecoder(num_layers, d_model, num_heads, ffn_dim, dropout)
        self.anatomy_decoder = QueryDecoder(num_layers, d_model, num_heads, ffn_dim, dropout)
        self.pathology_dropout = nn.Dropout(dropout)
        self.anatomy_dropout = nn.Dropout(dropout)
        self.pathology_classifier = nn.Linear(d_model, 2)
        self.anatomy_classifier = nn.Linear(d_model, 2)
        self.pathology_protocl = nn.Linear(d_model, text_dim)
        self.anatomy_protocl = nn.Linear(d_model, text_dim)
        self.icl_scale = d_model**-0.5 if icl_scale is None else float(icl_scale)
        self.protocl_scale = text_dim**-0.5 if protocl_scale is None else float(protocl_scale)
        self.register_buffer("query_mask", None, persistent=False)  # pathology self-attention mask (new findings)
        self.positional_encoding = look_up_option(positional_encoding, POSITIONAL_ENCODINGS)
        self._init_heads(look_up_option(init, INITS))

    def _init_heads(self, init: str) -> None:
        """Initialise every linear and attention layer outside the trunk (attention biases start at zero, as
        PyTorch makes them; linear biases are zeroed except with the official init, which keeps PyTorch's)."""
        for name, module in self.named_modules():
            if name.startswith("trunk"):
                continue
            if isinstance(module, nn.Linear):
                std = 0.02 if init == "official" else module.in_features**-0.5
                nn.init.normal_(module.weight, std=std)
                if init != "official":
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.MultiheadAttention):
                if init == "official":
                    nn.init.normal_(module.in_proj_weight, std=0.02)
                else:
                    nn.init.xavier_uniform_(module.in_proj_weight)
        if init == "variance_preserving":
            nn.init.constant_(self.mask_generator.bias, 0.5)  # both streams start from half of every token
            # LeCun-normal with respect to the books' real scale: queries start with unit variance whatever the
            # text encoder's embedding norm (MiniLM rows have norm 1, BERT [CLS] rows about 10-20).
            book = torch.cat([self.pathology_book, self.anatomy_book])
            mean_square_norm = float(book.pow(2).sum(-1).mean())
            if mean_square_norm > 0:  # all-zero books: an empty network that will load weights
                nn.init.normal_(self.query_embedding.weight, std=mean_square_norm**-0.5)

    def disentangle(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """Trunk tokens ``[B, N, C]`` and their pathology part ``m * x`` (the anatomy part is the rest), and the
        token grid ``(h, w)``."""
        features = self.trunk(image)
        grid = (int(features.shape[-2]), int(features.shape[-1]))
        tokens = features.flatten(2).transpose(1, 2)
        return tokens, self.mask_generator(tokens) * tokens, grid

    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """Pathology and anatomy tokens ``[B, N, d_model]`` of an image batch, and the token grid ``(h, w)``."""
        tokens, pathology_part, grid = self.disentangle(image)
        anatomy_part = tokens - pathology_part  # (1 - m) * x
        return self.pathology_projection(pathology_part), self.anatomy_projection(anatomy_part), grid

    def pathology_queries(self) -> torch.Tensor:
        """The pathology stream's query book ``[Q, text_dim]`` (the 75 entities; subclasses may add findings)."""
        return self.pathology_book

    def token_positions(self, grid: tuple[int, int], like: torch.Tensor) -> torch.Tensor | None:
        """Position codes ``[1, h * w, d_model]`` for the decoders' keys on a token grid ``(h, w)`` (None without)."""
        if self.positional_encoding == "none":
            return None
        return sine_positions(grid[0], grid[1], like.shape[-1]).to(device=like.device, dtype=like.dtype)

    def decode_pathology(
        self, pathology_tokens: torch.Tensor, grid: tuple[int, int], need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Pathology decoder on tokens ``[B, N, d_model]`` of a token ``grid``: decoded queries ``[B, Q, d_model]``
        and, if asked, the cross-attention of every layer ``[B, L, Q, N]``. The query set is shared by the batch until
        the first cross-attention, so the first self-attention runs once."""
        queries = self.query_embedding(self.pathology_queries()).unsqueeze(0)
        positions = self.token_positions(grid, pathology_tokens)
        return self.pathology_decoder(queries, pathology_tokens, need_weights, self.query_mask, positions)

    def existence_probabilities(self, decoded: torch.Tensor) -> torch.Tensor:
        """Decoded pathology queries ``[B, Q, d_model]`` -> existence probabilities ``[B, Q]``."""
        return torch.softmax(self.pathology_classifier(decoded).float(), dim=-1)[..., 1]

    @torch.no_grad()
    def predict(self, image: torch.Tensor) -> Prediction:
        """Findings of an image batch ``[B, 3, H, W]`` for every pathology query (the 75 entities in vocabulary
        order, then any a subclass adds): existence probabilities, grounding maps (:func:`~medslip_monai.grounding
        .grounding_maps`) and locations (:func:`~medslip_monai.locations.place_distribution`): the kind of place from
        each finding's ProtoCL scores against the anatomy book (trained to pick the anatomies a report states with
        the finding), the side and lung zone from where its map lies on the image.
        """
        pathology_tokens, _, grid = self.encode(image)
        decoded, attention = self.decode_pathology(pathology_tokens, grid, need_weights=True)
        maps = grounding_maps(attention.float(), grid)
        structure = self.protocl_scale * self.pathology_protocl(decoded) @ self.anatomy_book.T  # [B, Q, 51]
        return Prediction(
            probabilities=self.existence_probabilities(decoded),
            maps=maps,
            locations=place_distribution(structure, maps),
        )

    def forward(self, image: torch.Tensor, return_attention: bool = False) -> dict[str, torch.Tensor]:
        batch = image.shape[0]
        pathology_tokens, anatomy_tokens, grid = self.encode(image)
        pathology_queries = self.query_embedding(self.pathology_book).expand(batch, -1, -1)
        anatomy_queries = self.query_embedding(self.anatomy_book).expand(batch, -1, -1)
        positions = self.token_positions(grid, pathology_tokens)
        pathology, pathology_maps = self.pathology_decoder(
            pathology_queries, pathology_tokens, return_attention, memory_position=positions
        )
        anatomy, anatomy_maps = self.anatomy_decoder(
            anatomy_queries, anatomy_tokens, return_attention, memory_position=positions
        )

        pathology_out = self.pathology_dropout(pathology)
        anatomy_out = self.anatomy_dropout(anatomy)
        outputs = {
            "pathology_logits": self.pathology_classifier(pathology_out),
            "anatomy_logits": self.anatomy_classifier(anatomy_out),
            "pathology_to_anatomy": self.protocl_scale * self.pathology_protocl(pathology_out) @ self.anatomy_book.T,
            "anatomy_to_pathology": self.protocl_scale * self.anatomy_protocl(anatomy_out) @ self.pathology_book.T,
            "icl_logits": self.icl_scale * anatomy @ pathology.transpose(1, 2),
        }
        if return_attention:
            outputs["pathology_attention"] = pathology_maps.unflatten(-1, grid)
            outputs["anatomy_attention"] = anatomy_maps.unflatten(-1, grid)
        return outputs
