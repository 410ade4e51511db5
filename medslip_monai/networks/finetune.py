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
"""Fine-tuning networks on the MeDSLIP image encoder (the ResNet trunk to layer3): a classifier and a UNet."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
from monai.networks.nets.flexible_unet import SegmentationHead, UNetDecoder
from torch import nn

from medslip_monai.networks.medslip import ResNetTrunk

__all__ = ["MeDSLIPClassifier", "MeDSLIPUNet", "PathologyStream", "load_encoder_weights"]


def load_encoder_weights(
    module: nn.Module, model_file: str | os.PathLike, prefixes: Sequence[str] = ("trunk",)
) -> None:
    """Load the parts ``prefixes`` of a MeDSLIP ``model.pt`` (pre-trained or imported) into the same-named submodules
    of ``module``, strictly.

    Raises ``ValueError`` naming the file when a part is absent or does not fit (another backbone).
    """
    state = torch.load(model_file, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{model_file} is not a state dict")
    for prefix in prefixes:
        weights = {key[len(prefix) + 1 :]: value for key, value in state.items() if key.startswith(prefix + ".")}
        if not weights:
            raise ValueError(f"{model_file} holds no MeDSLIP {prefix} (no '{prefix}.' keys)")
        try:
            getattr(module, prefix).load_state_dict(weights, strict=True)
        except RuntimeError as error:
            raise ValueError(f"{model_file}: its {prefix} does not fit this network: {error}") from None


class PathologyStream(nn.Module):
    """MeDSLIP's disentangling mask and pathology projection as a feature map: trunk features ``[B, C, h, w]`` ->
    pathology tokens ``[B, d_model, h, w]`` (the features the pathology decoder attends to)."""

    def __init__(self, channels: int, d_model: int = 256) -> None:
        super().__init__()
        self.mask_generator = nn.Linear(channels, channels)
        self.pathology_projection = nn.Sequential(
            nn.Linear(channels, channels), nn.ReLU(inplace=True), nn.Linear(channels, d_model)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        tokens = features.flatten(2).transpose(1, 2)
        pathology = self.pathology_projection(self.mask_generator(tokens) * tokens)
        return pathology.transpose(1, 2).unflatten(-1, features.shape[-2:])


class MeDSLIPClassifier(nn.Module):
    """The MeDSLIP trunk, global average pooling, dropout and a linear layer: ``[B, 3, H, W] -> logits [B, K]``.

    Args:
        num_classes: outputs (one logit per class; train with a sigmoid loss).
        backbone: trunk depth (must match ``encoder_weights``).
        encoder_weights: a MeDSLIP ``model.pt`` whose trunk initialises this one; None starts from random weights.
        dropout: before the linear layer. Defaults to 0.2.
    """

    def __init__(
        self, num_classes: int, backbone: str = "resnet50", encoder_weights: str | None = None, dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.trunk = ResNetTrunk(backbone)
        if encoder_weights:
            load_encoder_weights(self, encoder_weights, ("trunk",))
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(self.trunk.out_channels, num_classes)
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(image))


class MeDSLIPUNet(nn.Module):
    """A UNet on the MeDSLIP image encoder: MONAI's ``UNetDecoder`` takes the trunk's four stages (strides 2 to 16)
    as skip connections, the deepest one joined by the pathology-stream tokens (MeDSLIP's disentangling mask and
    pathology projection), and a ``SegmentationHead`` gives logits at the input resolution:
    ``[B, 3, H, W] -> [B, K, H, W]``.

    Args:
        out_channels: output channels (one logit per class; train with Dice + BCE on sigmoids).
        backbone: trunk depth (must match ``encoder_weights``).
        encoder_weights: a MeDSLIP ``model.pt`` whose trunk and pathology stream initialise this encoder; None starts
            from random weights.
        pathology_stream: add the pathology tokens to the deepest features. Defaults to True; False is the official
            fine-tuning encoder (the ResNet alone).
        decoder_channels: widths of the four decoder blocks. Defaults to (256, 128, 64, 32).
        dropout: in the decoder blocks. Defaults to 0.2 (the official segmentation fine-tune's).
        d_model: width of the pathology tokens (256 in MeDSLIP).
    """

    def __init__(
        self,
        out_channels: int,
        backbone: str = "resnet50",
        encoder_weights: str | None = None,
        pathology_stream: bool = True,
        decoder_channels: Sequence[int] = (256, 128, 64, 32),
        dropout: float = 0.2,
        d_model: int = 256,
    ) -> None:
        super().__init__()
        self.trunk = ResNetTrunk(backbone)
        channels = list(self.trunk.stage_channels)
        self.stream = PathologyStream(self.trunk.out_channels, d_model) if pathology_stream else None
        if self.stream is not None:
            channels[-1] += d_model
        if encoder_weights:
            load_encoder_weights(self, encoder_weights, ("trunk",))
            if self.stream is not None:
                load_encoder_weights(self.stream, encoder_weights, ("mask_generator", "pathology_projection"))
        self.decoder = UNetDecoder(
            spatial_dims=2,
            encoder_channels=(3, *channels),
            decoder_channels=tuple(decoder_channels),
            act=("relu", {"inplace": True}),
            norm="batch",
            dropout=dropout,
            bias=False,
            upsample="nontrainable",
            pre_conv="default",
            interp_mode="bilinear",
            align_corners=False,
            is_pad=True,
        )
        self.head = SegmentationHead(spatial_dims=2, in_channels=decoder_channels[-1], out_channels=out_channels)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        stages = self.trunk.stages(image)
        if self.stream is not None:
            stages[-1] = torch.cat([stages[-1], self.stream(stages[-1]).to(memory_format=torch.channels_last)], dim=1)
        return self.head(self.decoder([image, *stages], skip_connect=len(stages) - 1))
