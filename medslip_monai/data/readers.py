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
"""Radiograph input: MONAI image readers for DICOM (rendered as a viewer shows it) and 2D NIfTI, a loading
transform that picks the reader per file, and folder listing.

Every format comes out in row-major picture order ``[H, W]`` (or ``[H, W, 3]``), the order
``PILReader(reverse_indexing=False)`` gives PNG and JPEG files and the one training uses, so every image reaches the
network the same way up.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import ImageReader, NibabelReader, PILReader
from monai.transforms import LoadImage, LoadImaged, MapTransform
from monai.utils import MetaKeys, ensure_tuple

__all__ = [
    "XRayDicomReader",
    "XRayNiftiReader",
    "LoadXRayd",
    "LoadXRayD",
    "LoadXRayDict",
    "LoadLabelMapd",
    "LoadLabelMapD",
    "LoadLabelMapDict",
    "is_dicom_file",
    "list_images",
    "IMAGE_SUFFIXES",
]

#: File name endings recognised as images when a folder is listed (files without a suffix are checked for DICOM).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom", ".nii", ".nii.gz")


def is_dicom_file(path: str | os.PathLike) -> bool:
    """True when the file carries the DICOM Part 10 preamble (``DICM`` at byte 128)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def _has_image_suffix(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(suffix) for suffix in IMAGE_SUFFIXES)


def list_images(path: str | os.PathLike, recursive: bool = True) -> list[dict[str, str]]:
    """``[{"image": file, "path": file}, ...]`` for one image file or every image in a folder (sorted).

    Folder entries are kept when their name ends in one of ``IMAGE_SUFFIXES`` or, without a suffix, when they are
    DICOM Part 10 files (PACS exports often have no suffix). ``"path"`` survives loading, to name outputs.
    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` for a folder without images.
    """
    root = Path(path)
    if root.is_file():
        return [{"image": str(root), "path": str(root)}]
    if not root.is_dir():
        raise FileNotFoundError(f"input {root} does not exist")
    candidates = root.rglob("*") if recursive else root.glob("*")
    files = sorted(
        p for p in candidates if p.is_file() and (_has_image_suffix(p) or (not p.suffix and is_dicom_file(p)))
    )
    if not files:
        raise ValueError(
            f"input folder {root} holds no images (looked for {', '.join(IMAGE_SUFFIXES)} and DICOM files)"
        )
    return [{"image": str(p), "path": str(p)} for p in files]


class XRayDicomReader(ImageReader):
    """Read a single-frame DICOM radiograph with pydicom and render it the way a viewer shows it.

    Steps: decode the pixels (any transfer syntax pydicom can decode with the installed plugins: native, RLE,
    JPEG and JPEG 2000 through Pillow, JPEG-LS with pylibjpeg); the modality LUT (rescale slope and intercept); the
    VOI LUT (a VOI LUT sequence, else the first window centre and width, honouring ``VOILUTFunction``) when
    ``apply_voi`` is on; and inversion of MONOCHROME1 (and of MONOCHROME2 with an INVERSE presentation LUT) so
    that air is dark and bone bright. The result is float32, ``[H, W]`` (or ``[H, W, 3]`` for colour).

    Raises ``ValueError`` naming the file for a file without pixel data or a multi-frame volume.

    Args:
        apply_voi: apply the stored VOI LUT or window. Defaults to True.
    """

    def __init__(self, apply_voi: bool = True) -> None:
        super().__init__()
        self.apply_voi = apply_voi

    def verify_suffix(self, filename: Sequence[str | os.PathLike] | str | os.PathLike) -> bool:
        names = [Path(f) for f in ensure_tuple(filename)]
        return all(n.suffix.lower() in (".dcm", ".dicom") or (not n.suffix and is_dicom_file(n)) for n in names)

    def read(self, data: Sequence[str | os.PathLike] | str | os.PathLike, **kwargs: Any) -> Any:
        import pydicom

        names = ensure_tuple(data)
        if len(names) != 1:
            raise ValueError(f"{type(self).__name__} reads one radiograph per item, got {len(names)} files")
        return pydicom.dcmread(names[0], **kwargs)

    def get_data(self, img: Any) -> tuple[np.ndarray, dict]:
        try:
            from pydicom.pixels import apply_modality_lut, apply_voi_lut
        except ImportError:  # pydicom 2 (the MONAI Label environment)
            from pydicom.pixel_data_handlers.util import apply_modality_lut, apply_voi_lut

        name = str(getattr(img, "filename", "DICOM dataset"))
        if "PixelData" not in img and "FloatPixelData" not in img and "DoubleFloatPixelData" not in img:
            raise ValueError(f"{name}: DICOM file has no pixel data")
        frames = int(img.get("NumberOfFrames", 1) or 1)
        if frames > 1:
            raise ValueError(f"{name}: DICOM holds {frames} frames (a volume or cine); expected one 2D radiograph")
        try:
            pixels = img.pixel_array
        except Exception as e:  # decoder errors come from many plugins; name the file and the transfer syntax
            syntax = getattr(getattr(img, "file_meta", None), "TransferSyntaxUID", "unknown")
            raise ValueError(f"{name}: cannot decode the pixel data ({syntax}): {e}") from e
        photometric = str(img.get("PhotometricInterpretation", "MONOCHROME2")).upper()
        if photometric.startswith("MONOCHROME"):
            pixels = apply_modality_lut(pixels, img)
            if self.apply_voi and ("VOILUTSequence" in img or "WindowCenter" in img):
                pixels = apply_voi_lut(pixels, img, index=0)
            pixels = pixels.astype(np.float32)
            inverse = str(img.get("PresentationLUTShape", "IDENTITY")).upper() == "INVERSE"
            if (photometric == "MONOCHROME1") != (photometric == "MONOCHROME2" and inverse):
                pixels = float(pixels.max()) + float(pixels.min()) - pixels
        else:
            pixels = pixels.astype(np.float32)  # pydicom returns RGB for RGB and YBR data
        spatial = pixels.shape[:2]
        spacing = img.get("PixelSpacing") or img.get("ImagerPixelSpacing") or (1.0, 1.0)
        meta = {  # no affine: like PILReader's pictures, so that batches mixing formats collate
            MetaKeys.SPATIAL_SHAPE: np.asarray(spatial),
            MetaKeys.ORIGINAL_CHANNEL_DIM: float("nan") if pixels.ndim == 2 else -1,
            "pixel_spacing": np.asarray([float(spacing[0]), float(spacing[1])]),
            "photometric_interpretation": photometric,
            "modality": str(img.get("Modality", "")),
        }
        return pixels, meta


class XRayNiftiReader(NibabelReader):
    """NIfTI radiographs as pictures: ``[X, Y]`` or ``[X, Y, 1]`` data -> ``[H, W]`` float32 (rows first).

    NIfTI stores the first axis along the image columns (what ITK and MONAI's ``SaveImage`` write for 2D images), so
    the array is transposed to row-major order. A volume with more than one slice is refused naming the file.
    """

    def get_data(self, img: Any) -> tuple[np.ndarray, dict]:
        data, meta = super().get_data(img)
        name = str(getattr(img, "get_filename", lambda: "NIfTI image")())
        if data.ndim == 3 and data.shape[2] == 1:
            data = data[..., 0]
        if data.ndim != 2:
            raise ValueError(f"{name}: NIfTI image has shape {tuple(data.shape)}; expected one 2D radiograph")
        data = np.ascontiguousarray(data.T, dtype=np.float32)
        meta[MetaKeys.SPATIAL_SHAPE] = np.asarray(data.shape)
        meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = float("nan")
        for key in (MetaKeys.AFFINE, MetaKeys.ORIGINAL_AFFINE, "dim", "pixdim", "srow_x", "srow_y", "srow_z"):
            meta.pop(key, None)  # the picture's geometry, not the volume's, as for PNG files
        return data, meta


class LoadXRayd(MapTransform):
    """Load radiographs with MONAI's ``LoadImage``, choosing the reader from the file itself.

    DICOM (``.dcm``/``.dicom`` or a Part 10 preamble) -> :class:`XRayDicomReader`; ``.nii``/``.nii.gz`` ->
    :class:`XRayNiftiReader`; anything else -> ``PILReader(reverse_indexing=False)`` (PNG and TIFF of 8 or 16 bits,
    JPEG, BMP; grey, RGB or RGBA). The result is a float32 ``MetaTensor``, rows first: grey ``[1, H, W]`` or colour
    ``[3, H, W]``; an alpha channel (grey + alpha, RGBA) is dropped, since it is no part of the picture.

    Every problem raises naming the file: ``FileNotFoundError`` for a missing file, ``ValueError`` for one that
    cannot be read (zero bytes, truncated, not an image, no pixel data, a volume), for a picture smaller than
    ``min_size`` on a side or larger than ``max_pixels`` (checked from the header, before decoding) and for
    non-finite pixels (NaN or infinity in float TIFF or NIfTI data).

    Args:
        keys: keys holding file paths.
        apply_voi: apply DICOM VOI LUTs and windows, see :class:`XRayDicomReader`. Defaults to True.
        min_size: smallest accepted side in pixels. Defaults to 32.
        max_pixels: largest accepted image in pixels. Defaults to 8192 x 8192.
    """

    def __init__(
        self,
        keys: KeysCollection,
        apply_voi: bool = True,
        min_size: int = 32,
        max_pixels: int = 8192 * 8192,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.dicom, self.nifti = XRayDicomReader(apply_voi), XRayNiftiReader()
        self.picture = PILReader(reverse_indexing=False)
        self.loader = LoadImage(
            reader=[self.picture, self.nifti, self.dicom], image_only=True, ensure_channel_first=True, dtype=np.float32
        )
        self.min_size = min_size
        self.max_pixels = max_pixels

    def reader_for(self, path: str | os.PathLike) -> ImageReader:
        """The reader that will read ``path``."""
        name = str(path).lower()
        if name.endswith((".nii", ".nii.gz")):
            return self.nifti
        return self.dicom if self.dicom.verify_suffix(path) else self.picture

    def _stored_size(self, path: str, reader: ImageReader) -> tuple[int, int]:
        """Rows and columns from the file header, without decoding the pixels."""
        if reader is self.dicom:
            import pydicom

            header = pydicom.dcmread(path, stop_before_pixels=True)
            return int(header.get("Rows", 0)), int(header.get("Columns", 0))
        if reader is self.nifti:
            import nibabel

            shape = nibabel.load(path).shape
            return (int(shape[1]), int(shape[0])) if len(shape) >= 2 else (int(shape[0]), 1)
        from PIL import Image

        with Image.open(path) as picture:
            return picture.height, picture.width

    def _load(self, path: str) -> Any:
        reader = self.reader_for(path)
        rows, columns = self._stored_size(path, reader)
        if rows * columns > self.max_pixels:
            raise ValueError(f"{path}: {rows} x {columns} pixels is above the limit of {self.max_pixels} (max_pixels)")
        image = self.loader(path, reader=reader)
        if min(image.shape[1:]) < self.min_size:
            raise ValueError(f"{path}: {tuple(image.shape[1:])} pixels is below the smallest side of {self.min_size}")
        bad = int((~torch.isfinite(image)).sum())
        if bad:
            raise ValueError(f"{path}: {bad} pixels are NaN or infinite")
        if image.shape[0] in (2, 4):  # grey + alpha or RGBA
            image = image[:-1]
        if image.shape[0] not in (1, 3):
            raise ValueError(f"{path}: {image.shape[0]} channels; expected a grey or colour picture")
        return image

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            path = str(d[key])
            if not Path(path).is_file():
                raise FileNotFoundError(f"image {path} does not exist")
            try:
                d[key] = self._load(path)
            except ValueError as e:
                raise ValueError(str(e) if path in str(e) else f"{path}: {e}") from e
            except Exception as e:
                raise ValueError(f"{path}: cannot read the image: {type(e).__name__}: {e}") from e
        return d


class LoadLabelMapd(LoadImaged):
    """Load masks and label maps (PNG) as stored: integer values kept, ``[1, H, W]`` float32, rows first like
    :class:`LoadXRayd`'s pictures (MONAI ``PILReader(reverse_indexing=False)``).

    Args:
        keys: keys holding file paths.
    """

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(
            keys,
            reader=PILReader(reverse_indexing=False),
            image_only=True,
            ensure_channel_first=True,
            allow_missing_keys=allow_missing_keys,
        )


LoadXRayD = LoadXRayDict = LoadXRayd
LoadLabelMapD = LoadLabelMapDict = LoadLabelMapd
