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
"""Where a finding is: the side and zone read from its grounding map in image coordinates, combined with the
anatomical structure the network learned (its ProtoCL scores against the anatomy book), as a distribution over the 49
anatomy entities that name a place.

The network is nearly mirror-invariant (its decoders see no position, and training flips images with their labels),
so the learned scores know *what kind* of place a finding belongs to (a costophrenic angle, a lobe) but hardly which
side; the map knows where the finding is on the image. Images are in the radiological convention (the patient's right
on the image's left; DICOM files stored otherwise are mirrored on reading, see ``data.XRayDicomReader``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from medslip_monai.vocab import ANATOMIES, ANATOMY_SIDES, ANATOMY_ZONES, NON_LOCATIONS

__all__ = [
    "SHARPNESS",
    "ZONE_BOUNDS",
    "ZONES",
    "NO_LOCATION",
    "map_geometry",
    "place_distribution",
    "top_places",
    "anatomy_label",
    "places_text",
]

ZONES = ("upper", "mid", "lower")
#: Image-height fractions between the lung zones (the synthetic world's zone centres sit at 0.28, 0.45 and 0.60;
#: a frontal chest radiograph's lungs span about 0.1 to 0.8 of its height).
ZONE_BOUNDS = (0.37, 0.53)
#: The map is raised to this power (after scaling its peak to 1) before its mass is shared out: the peak region
#: decides, not a broad low plateau. Chosen on the validation split of one default-recipe model (world v4): mass
#: as is gives side 0.671 and top-1 place 0.657, power 2 0.719 / 0.725, 4 0.735 / 0.730, 8 0.735 / 0.747, the peak
#: token alone 0.727 / 0.719 (``docs/decisions.md``).
SHARPNESS = 4
#: What the outputs say for a finding whose grounding map points nowhere.
NO_LOCATION = "no location (its grounding map is flat or not finite)"

_PLACES = torch.tensor([name not in NON_LOCATIONS for name in ANATOMIES])
_PLACE_INDICES = [k for k, name in enumerate(ANATOMIES) if name not in NON_LOCATIONS]
_LEFT = torch.tensor([ANATOMY_SIDES[name] == "left" for name in ANATOMIES])
_RIGHT = torch.tensor([ANATOMY_SIDES[name] == "right" for name in ANATOMIES])
_ZONE_OF = torch.tensor([ZONES.index(ANATOMY_ZONES[name]) if ANATOMY_ZONES[name] else -1 for name in ANATOMIES])


def _band_weights(size: int, bounds: tuple[float, ...]) -> torch.Tensor:
    """``[size, len(bounds) + 1]``: how much of each of ``size`` tokens along an axis lies in each band, a token
    covering the stretch around where its receptive field is centred (``i / size``, see
    :mod:`medslip_monai.grounding`; the outer tokens reach the image edges)."""
    edges = torch.tensor([0.0, *bounds, 1.0])
    low = ((torch.arange(size) - 0.5) / size).clamp(min=0)
    high = torch.where(torch.arange(size) == size - 1, 1.0, (torch.arange(size) + 0.5) / size)
    overlap = (torch.minimum(high[:, None], edges[None, 1:]) - torch.maximum(low[:, None], edges[None, :-1])).clamp(
        min=0
    )
    return overlap / (high - low)[:, None]


def map_geometry(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grounding maps ``[B, N, h, w]`` (non-negative) -> ``(p_right [B, N], zones [B, N, 3], defined [B, N])``.

    ``p_right`` is the share of the map's mass on the patient's right (the image's left half; a middle column counts
    half on each side), ``zones`` its share in the upper, mid and lower bands of the image (``ZONE_BOUNDS``); the mass
    is the map scaled to a peak of 1 and raised to ``SHARPNESS``.
    ``defined`` is false for a map that is flat (its values all equal, so it points nowhere) or not finite: such a
    finding gets no location.
    """
    maps = maps.float()
    h, w = maps.shape[-2:]
    flat = maps.flatten(-2)
    defined = torch.isfinite(flat).all(-1) & (
        (flat.amax(-1) - flat.amin(-1)) > 1e-6 * flat.abs().amax(-1).clamp(min=1e-12)
    )
    peaked = flat.clamp(min=0) / flat.amax(-1, keepdim=True).clamp(min=1e-12)
    mass = torch.where(defined[..., None], peaked**SHARPNESS, torch.zeros_like(flat)).unflatten(-1, (h, w))
    total = mass.sum((-2, -1)).clamp(min=1e-12)
    column_side = _band_weights(w, (0.5,)).to(maps.device)[:, 0]  # share of each column on the image's left
    p_right = (mass.sum(-2) * column_side).sum(-1) / total
    zones = (mass.sum(-1) @ _band_weights(h, ZONE_BOUNDS).to(maps.device)) / total[..., None]
    return p_right, zones, defined


def place_distribution(structure: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Learned structure scores ``[B, N, 51]`` (logits against the anatomy book) and grounding maps
    ``[B, N, h, w]`` -> locations ``[B, N, 51]``: a distribution over the anatomies that name a place, all zeros where
    the map defines no location (see :func:`map_geometry`).

    The structure's softmax over the places, weighted by the map: a place on one side by twice the map's share on
    that side, a place in a lung zone by three times its share in that zone (both weights 1 for an even map);
    places with neither keep their share. A left/right pair the structure cannot tell apart is thus split by the
    map alone, and a structure that has learned a side keeps it against an ambiguous map.
    """
    scores = structure.float().masked_fill(~_PLACES.to(structure.device), float("-inf"))
    share = torch.softmax(scores, dim=-1)
    p_right, zones, defined = map_geometry(maps)
    left, right, zone_of = (value.to(share.device) for value in (_LEFT, _RIGHT, _ZONE_OF))
    side = torch.where(right, p_right[..., None], torch.where(left, 1 - p_right[..., None], 0.5))
    zone = torch.where(zone_of >= 0, 3 * zones[..., zone_of.clamp(min=0)], torch.ones_like(share))
    weighted = share * 2 * side * zone
    located = weighted / weighted.sum(-1, keepdim=True).clamp(min=1e-12)
    return torch.where(defined[..., None], located, torch.zeros_like(located))


def top_places(locations: Sequence[float] | np.ndarray | torch.Tensor, count: int = 3) -> list[list]:
    """One finding's locations ``[51]`` -> its ``count`` most likely places ``[["left_costophrenic", 0.83], ...]``
    (shares rounded to 4 digits); an empty list for a finding without a location (all zeros, see
    :func:`place_distribution`)."""
    shares = np.asarray(locations, dtype=np.float64)
    if not np.isfinite(shares).all() or shares.sum() <= 0:
        return []
    order = sorted(_PLACE_INDICES, key=lambda k: -shares[k])[:count]
    return [[ANATOMIES[k], round(float(shares[k]), 4)] for k in order]


def anatomy_label(name: str) -> str:
    """``left_costophrenic`` -> ``left costophrenic``; ``hilar_unspec`` -> ``hilar``."""
    return name.removesuffix("_unspec").replace("_", " ")


def places_text(places: Sequence[Sequence]) -> str:
    """``[["left_costophrenic", 0.83], ...]`` -> ``"left costophrenic 0.83, ..."``; ``[]`` -> ``NO_LOCATION``."""
    if not places:
        return NO_LOCATION
    return ", ".join(f"{anatomy_label(anatomy)} {share:.2f}" for anatomy, share in places)
