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
"""Pictures of findings: heat maps blended over radiographs, captioned panels and ROC curves.

Overlays use MONAI's ``blend_images`` with a value-driven alpha, so a heat map fades out where it is low and the
radiograph stays readable; every picture of the project (inference overlays, evaluation overlays, TensorBoard
images, DICOM secondary captures) is drawn here.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.transforms.utils import rescale_array
from monai.visualize import blend_images
from PIL import Image, ImageDraw, ImageFont

__all__ = ["display_grey", "heat_overlay", "outline", "captioned_panels", "to_pil", "roc_figure"]

#: Colour of ground-truth outlines (light blue, away from the heat colours).
OUTLINE_COLOUR = (0.2, 0.8, 1.0)


def display_grey(image: torch.Tensor) -> torch.Tensor:
    """An image ``[C, H, W]`` (any intensity range) as one grey plane ``[1, H, W]`` stretched to [0, 1]."""
    return rescale_array(image.detach().float().cpu().mean(0, keepdim=True), 0.0, 1.0)


def heat_overlay(
    image: torch.Tensor, heat: torch.Tensor, cmap: str = "jet", max_alpha: float = 0.6, fade: float = 2.0
) -> torch.Tensor:
    """RGB overlay ``[3, H, W]`` in [0, 1] of a heat map on an image ``[C, H, W]``.

    Args:
        image: the radiograph (any intensity range; shown as grey).
        heat: ``[h, w]`` in [0, 1]; resized bilinearly to the image when its size differs.
        cmap: matplotlib colour map of the heat. Defaults to ``"jet"``.
        max_alpha: opacity where the heat is 1. Defaults to 0.6.
        fade: opacity grows as ``heat ** fade``, so low values leave the radiograph visible. Defaults to 2.
    """
    grey = display_grey(image)
    heat = heat.detach().float().cpu()
    if tuple(heat.shape[-2:]) != tuple(grey.shape[-2:]):
        heat = F.interpolate(heat[None, None], size=grey.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    heat = heat.clamp(0, 1).reshape(1, *grey.shape[-2:])
    alpha = max_alpha * heat**fade
    return blend_images(grey, heat, alpha=alpha, cmap=cmap, rescale_arrays=False, transparent_background=True)


def outline(mask: torch.Tensor) -> torch.Tensor:
    """The one-pixel outer border ``[H, W]`` (bool) of a boolean region ``[H, W]``."""
    region = mask.float()[None, None]
    return (F.max_pool2d(region, 3, 1, 1) - region)[0, 0] > 0


def to_pil(picture: torch.Tensor) -> Image.Image:
    """An RGB picture ``[3, H, W]`` in [0, 1] as an 8-bit PIL image."""
    array = (picture.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(array)


def captioned_panels(panels: Sequence[tuple[torch.Tensor, Sequence[str]]], side: int | None = None) -> Image.Image:
    """Pictures side by side, each ``side`` pixels square (default: the first picture's width, at least 384), with
    its caption lines below in type scaled to the panel (about 1/22 of its side), wrapped to the panel's width.

    Args:
        panels: ``(picture [3, H, W] or [1, H, W] in [0, 1], caption lines)`` pairs.
        side: panel side in pixels.
    """
    side = int(side or max(384, int(panels[0][0].shape[-1])))
    size = max(12, side // 22)
    font = ImageFont.load_default(size=size)
    width_chars = max(12, int(side / (0.55 * size)))
    captions = [[wrapped for line in lines for wrapped in textwrap.wrap(line, width_chars)] for _, lines in panels]
    line_height = int(size * 1.3)
    band = 6 + line_height * max(1, max(len(lines) for lines in captions))
    canvas = Image.new("RGB", (side * len(panels), side + band), "white")
    draw = ImageDraw.Draw(canvas)
    for i, ((picture, _), lines) in enumerate(zip(panels, captions)):
        picture = picture.expand(3, -1, -1) if picture.shape[0] == 1 else picture
        canvas.paste(to_pil(picture).resize((side, side), Image.Resampling.BILINEAR), (i * side, 0))
        for j, line in enumerate(lines):
            draw.text((i * side + 6, side + 4 + line_height * j), line, fill="black", font=font)
    return canvas


def roc_figure(
    path: str | os.PathLike, probs: np.ndarray, labels: np.ndarray, classes: Sequence[str], aucs: Mapping
) -> Path:
    """ROC curves ``probs [M, K]`` against 0/1 ``labels [M, K]`` of the classes holding both labels, with their AUC
    (``aucs[name]["auc"]``) in the legend, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from sklearn.metrics import roc_curve

    figure, axes = plt.subplots(figsize=(5.5, 5.5), dpi=110)
    for k, name in enumerate(classes):
        if 0 < labels[:, k].sum() < len(labels):
            fpr, tpr, _ = roc_curve(labels[:, k], probs[:, k])
            axes.plot(fpr, tpr, lw=1.4, label=f"{name} ({aucs[name]['auc']:.3f})")
    axes.plot([0, 1], [0, 1], "k:", lw=0.8)
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="Zero-shot ROC (test)")
    axes.set(xlim=(0, 1), ylim=(0, 1))
    axes.legend(loc="lower right", fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return Path(path)
