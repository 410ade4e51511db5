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
"""Radiograph input: MONAI image readers for DICOM (rendered as a viewer shows it) and 2D NIfTI, one decoding
policy for pictures (PNG, JPEG, TIFF, BMP, GIF), a loading transform that picks the reader from the file's content,
and folder listing.

Every format comes out in row-major picture order ``[H, W]`` (or ``[H, W, 3]``), the order
``PILReader(reverse_indexing=False)`` gives PNG and JPEG files and the one training uses, so every image reaches the
network the same way up.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import zlib
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
    "PICTURE_FORMATS",
    "detect_format",
    "picture_policy",
    "XRayDicomReader",
    "XRayNiftiReader",
    "LoadXRayd",
    "LoadXRayD",
    "LoadXRayDict",
    "LoadLabelMapd",
    "LoadLabelMapD",
    "LoadLabelMapDict",
    "is_dicom_file",
    "DISPLAY_FLIPS",
    "orientation_flips",
    "displayed_orientation",
    "follow_display",
    "list_images",
    "IMAGE_SUFFIXES",
]

logger = logging.getLogger(__name__)

#: File name endings recognised as images when a folder is listed (other files are checked for DICOM content).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom", ".nii", ".nii.gz")


def is_dicom_file(path: str | os.PathLike) -> bool:
    """True when the file carries the DICOM Part 10 preamble (``DICM`` at byte 128)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


#: Picture containers decoded with Pillow (through MONAI's ``PILReader``), by Pillow's format name.
PICTURE_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "GIF")
_ACCEPTED = "DICOM (Part 10, 'DICM' at byte 128), PNG, JPEG, TIFF, BMP, GIF and NIfTI (.nii, .nii.gz)"
_SIGNATURES = (  # (format, leading bytes); DICOM and NIfTI have their magic further in, see detect_format
    ("PNG", b"\x89PNG\r\n\x1a\n"),
    ("JPEG", b"\xff\xd8\xff"),
    *(("TIFF", prefix) for prefix in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+", b"MM*\x00", b"II\x00*")),
    ("BMP", b"BM"),
    ("GIF", b"GIF87a"),
    ("GIF", b"GIF89a"),
)
_FORMAT_OF_SUFFIX = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".gif": "GIF",
    ".dcm": "DICOM",
    ".dicom": "DICOM",
    ".nii": "NIfTI",
    ".nii.gz": "NIfTI",
}


def _nifti_magic(header: bytes) -> str:
    """``"n+1"``, ``"ni1"`` or ``"n+2"`` for a NIfTI-1 (single file or header of a pair) or NIfTI-2 header, else ``""``."""
    if header[344:348] in (b"n+1\x00", b"ni1\x00"):
        return header[344:347].decode()
    if header[4:8] == b"n+2\x00":
        return "n+2"
    return ""


def _nifti_names(magic: str, compressed: bool) -> tuple[str, ...]:
    """File name endings nibabel needs for a NIfTI header of ``magic``: it chooses its decoder by the name."""
    names = (".hdr",) if magic == "ni1" else (".nii",)
    return tuple(name + ".gz" for name in names) if compressed else names


def detect_format(path: str | os.PathLike) -> str:
    """The image format of a file from its content (magic bytes), whatever its name says.

    Returns ``"DICOM"`` (Part 10: ``DICM`` at byte 128), one of :data:`PICTURE_FORMATS` (the file's signature),
    or ``"NIfTI"`` (``n+1``/``ni1`` at byte 344 or ``n+2`` at byte 4, plain or inside gzip). DICOM is tested first:
    its 128-byte preamble may hold another format's header (dual-personality DICOM/TIFF files).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file for an empty file or any
    other content.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(540)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"image {path} does not exist") from e
    except OSError as e:
        raise ValueError(f"{path}: cannot read the image: {e}") from e
    if not head:
        raise ValueError(f"{path}: cannot read the image: the file is empty (0 bytes)")
    if head[128:132] == b"DICM":
        return "DICOM"
    for name, signature in _SIGNATURES:
        if head.startswith(signature):
            return name
    if _nifti_magic(head):
        return "NIfTI"
    if head.startswith(b"\x1f\x8b") and _nifti_magic(_gunzip_head(path)):
        return "NIfTI"
    raise ValueError(
        f"{path}: cannot read the image: its content is none of the accepted formats, {_ACCEPTED} "
        f"(it starts with {head[:8]!r}); convert it to one of them, PNG for a picture"
    )


def _gunzip_head(path: str | os.PathLike) -> bytes:
    """The first 540 bytes of a gzip file's content, or ``b""`` when it cannot be decompressed."""
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(540)
    except (OSError, EOFError, zlib.error):
        return b""


def _check_nifti_name(path: str | os.PathLike) -> None:
    """Refuse (``ValueError``) a NIfTI file whose name does not end the way nibabel needs for its content."""
    with open(path, "rb") as handle:
        head = handle.read(540)
    compressed = head.startswith(b"\x1f\x8b")
    names = _nifti_names(_nifti_magic(_gunzip_head(path) if compressed else head), compressed)
    if not str(path).lower().endswith(names):
        kind = "a gzip-compressed NIfTI image" if compressed else "an uncompressed NIfTI image"
        raise ValueError(
            f"{path}: the content is {kind}, but nibabel chooses its decoder by the file name: "
            f"rename the file to end in {' or '.join(names)}"
        )


def _suffix_format(path: str | os.PathLike) -> str | None:
    name = str(path).lower()
    for suffix in sorted(_FORMAT_OF_SUFFIX, key=len, reverse=True):
        if name.endswith(suffix):
            return _FORMAT_OF_SUFFIX[suffix]
    return None


def _grey_palette(image: Any) -> bool:
    """True when every palette entry the picture uses is grey (red = green = blue)."""
    palette = np.zeros((256, 3), np.int64)
    entries = np.asarray(image.getpalette("RGB") or [], np.int64).reshape(-1, 3)[:256]
    palette[: len(entries)] = entries
    used = np.flatnonzero(np.asarray(image.histogram()[:256]))
    colours = palette[used]
    return bool(np.all(colours == colours[:, :1]))


def _orientation(image: Any, name: str) -> int:
    """The picture's EXIF (for TIFF: IFD) orientation, 1 to 8, 1 when absent; a warning and 1 when unreadable."""
    try:
        orientation = int(image.getexif().get(0x0112, 1) or 1)
    except Exception as e:  # corrupt EXIF blocks raise from several places in Pillow
        logger.warning("%s: the EXIF block cannot be read (%s); the picture is used as stored", name, e)
        return 1
    if not 1 <= orientation <= 8:
        logger.warning(
            "%s: EXIF orientation %d is not a valid value (1-8); the picture is used as stored", name, orientation
        )
        return 1
    return orientation


def _tiff_from_memory(image: Any) -> Any:
    """The TIFF reopened from its bytes in memory, not memory-mapped from the file.

    Pillow (11 and later) gives a TIFF whose orientation transposes (5 to 8) its upright size on opening but
    memory-maps an uncompressed strip with that size, scrambling the rows; decoding from memory avoids the map.
    """
    from PIL import Image

    with open(image.filename, "rb") as handle:
        reopened = Image.open(io.BytesIO(handle.read()), formats=["TIFF"])
    image.close()
    return reopened


#: Pillow modes kept as decoded: grey of 8, 16 or 32 bits, float grey, colour; an alpha channel (LA, RGBA) is
#: dropped by :class:`LoadXRayd` after reading.
_KEPT_MODES = frozenset({"L", "LA", "RGB", "RGBA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
#: Pillow modes converted with Pillow's own conversions. CMYK JPEGs are decoded by Pillow with the Adobe convention
#: (inverted ink values, what Photoshop and Pillow write); premultiplied alpha is divided out before it is dropped.
_CONVERTED_MODES = {
    "1": "L",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
    "RGBX": "RGB",
    "La": "LA",
    "RGBa": "RGBA",
}


def picture_policy(image: Any) -> Any:
    """The one decoding policy for pictures read with Pillow: ``PIL.Image -> PIL.Image``, the ``converter`` of
    MONAI's ``PILReader`` in :class:`LoadXRayd`.

    In order: a file of several frames (animated PNG or GIF, multi-page TIFF) is refused naming the file and the
    frame count (the primary picture of a JPEG multi-picture (MPO) file is read: the standard makes it the
    picture); the EXIF orientation is applied (``ImageOps.exif_transpose``) so the picture comes out upright;
    palette pictures (``P``, ``PA``) become their colours (``L`` when every colour used is grey, else ``RGB``);
    bilevel ``1`` becomes ``L`` (0 and 255); ``CMYK``, ``YCbCr``, ``LAB``, ``HSV`` and ``RGBX`` become ``RGB``;
    grey of 8/16/32 bits, float grey, ``RGB`` and the alpha modes are kept. A picture that nothing changes is
    returned as it is. A mode without a rule is refused.

    Raises ``ValueError`` naming the file; logs a warning naming the file for a CMYK JPEG without an Adobe marker
    (its ink polarity is a convention, not a recorded fact) and for an unreadable or invalid EXIF orientation.
    """
    from PIL import ImageOps

    name = str(getattr(image, "filename", "") or "picture")
    frames = int(getattr(image, "n_frames", 1) or 1)
    if frames > 1 and image.format != "MPO":
        raise ValueError(
            f"{name}: {image.format} file holds {frames} frames (an animation or a multi-page file); expected one "
            "2D radiograph: save the frame you mean as a single-frame PNG"
        )
    if image.format in ("JPEG", "MPO") and image.mode == "CMYK" and "adobe" not in image.info:
        logger.warning(
            "%s: CMYK JPEG without an Adobe marker: read with the Adobe convention (inverted inks); "
            "check that the picture is not a negative",
            name,
        )
    result = image
    orientation = _orientation(image, name)
    if orientation != 1:
        if image.format == "TIFF" and orientation >= 5 and getattr(image, "filename", ""):
            result = _tiff_from_memory(image)
        result = ImageOps.exif_transpose(result)  # Pillow turns TIFFs itself on loading; never twice
    mode = result.mode
    if mode in ("P", "PA"):
        result.info.pop("transparency", None)  # alpha is dropped; the colours are the picture
        result = result.convert("L" if _grey_palette(result) else "RGB")
    elif mode in _CONVERTED_MODES:
        result = result.convert(_CONVERTED_MODES[mode])
    elif mode not in _KEPT_MODES:
        raise ValueError(
            f"{name}: Pillow decodes it as mode {mode!r}, which has no rule here; save it as a grey PNG of 8 or 16 bits"
        )
    if result is not image:
        result.format = image.format  # the file's format, in the meta data, whatever was converted
    return result


def _has_image_suffix(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(suffix) for suffix in IMAGE_SUFFIXES)


def list_images(path: str | os.PathLike, recursive: bool = True) -> list[dict[str, str]]:
    """``[{"image": file, "path": file}, ...]`` for one image file or every image in a folder (sorted).

    Folder entries are kept when their name ends in one of ``IMAGE_SUFFIXES`` or, whatever their name, when they
    are DICOM Part 10 files (PACS exports often have no suffix, or are named by their UID, ``1.2.840....3``), except
    ``DICOMDIR`` (an index, no picture). ``"path"`` survives loading, to name outputs; the reader is then chosen
    from the content (:func:`detect_format`).
    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` for a folder without images.
    """
    root = Path(path)
    if root.is_file():
        return [{"image": str(root), "path": str(root)}]
    if not root.is_dir():
        raise FileNotFoundError(f"input {root} does not exist")
    candidates = root.rglob("*") if recursive else root.glob("*")
    files = sorted(
        p
        for p in candidates
        if p.is_file() and (_has_image_suffix(p) or (p.name.upper() != "DICOMDIR" and is_dicom_file(p)))
    )
    if not files:
        raise ValueError(
            f"input folder {root} holds no images (looked for {', '.join(IMAGE_SUFFIXES)} and DICOM files)"
        )
    return [{"image": str(p), "path": str(p)} for p in files]


#: Meta key of a loaded radiograph: ``[flip_rows, flip_columns]``, the flips that turned the stored pixels into the
#: displayed (radiological) layout (``XRayDicomReader``); absent or all false where the two are the same.
DISPLAY_FLIPS = "display_flips"
_OPPOSITE = str.maketrans("RLAPHF", "LRPAFH")


def orientation_flips(orientation: Sequence[str]) -> tuple[bool, bool]:
    """DICOM ``PatientOrientation`` (the patient directions of the rows and of the columns, e.g. ``["L", "F"]``) ->
    ``(flip_rows, flip_columns)`` that bring the image to the radiological display of a frontal chest film: the
    patient's right on the image's left (rows run towards the patient's left, "L") and the head at the top (columns
    run towards the feet, "F"). A row direction starting with "R" mirrors the columns; a column direction starting
    with "H" turns the rows upside down. Other values (a lateral view's "A"/"P", missing or malformed values) flip
    nothing."""
    values = [str(v).strip().upper() for v in orientation]
    if len(values) != 2:
        return False, False
    return values[1].startswith("H"), values[0].startswith("R")


def displayed_orientation(orientation: Sequence[str]) -> tuple[str, str]:
    """The ``PatientOrientation`` of the image once :func:`orientation_flips` is applied (e.g. ``R\\H`` -> ``L\\F``).
    A value whose axis was flipped names the opposite directions."""
    rows, columns = (str(v).strip().upper() for v in orientation)
    flip_rows, flip_columns = orientation_flips(orientation)
    return (rows.translate(_OPPOSITE) if flip_columns else rows), (
        columns.translate(_OPPOSITE) if flip_rows else columns
    )


def follow_display(array: Any, reference: Any) -> Any:
    """Apply ``reference``'s display flips (its ``DISPLAY_FLIPS`` meta, see :func:`orientation_flips`) to ``array``
    ``[..., H, W]``: a mask or label map stored in the layout of the stored image comes to the displayed one, and
    (the flips undo themselves) a map of the displayed image goes back to the stored layout."""
    flips = getattr(reference, "meta", {}).get(DISPLAY_FLIPS)
    if flips is None:
        return array
    axes = [axis for axis, flip in zip((-2, -1), np.asarray(flips).reshape(-1)[-2:]) if flip]
    if not axes:
        return array
    return torch.flip(array, axes) if isinstance(array, torch.Tensor) else np.flip(array, axes).copy()


class XRayDicomReader(ImageReader):
    """Read a single-frame DICOM radiograph with pydicom and render it the way a viewer shows it.

    Steps: decode the pixels (any transfer syntax pydicom can decode with the installed plugins: native, RLE,
    JPEG and JPEG 2000 through Pillow, JPEG-LS with pylibjpeg); the modality LUT (rescale slope and intercept); the
    VOI LUT (a VOI LUT sequence, else the first window centre and width, honouring ``VOILUTFunction``) when
    ``apply_voi`` is on; and inversion of MONOCHROME1 (and of MONOCHROME2 with an INVERSE presentation LUT) so
    that air is dark and bone bright. The result is float32, ``[H, W]`` (or ``[H, W, 3]`` for colour). With
    ``orient`` the pixels are flipped to the radiological display that ``PatientOrientation`` calls for
    (:func:`orientation_flips`): the patient's right on the image's left, the head at the top; the flips applied are
    in the meta (``DISPLAY_FLIPS``) with the stored ``patient_orientation``.

    Raises ``ValueError`` naming the file for a file without pixel data or a multi-frame volume.

    Args:
        apply_voi: apply the stored VOI LUT or window. Defaults to True.
        orient: honour ``PatientOrientation``. Defaults to True.
    """

    def __init__(self, apply_voi: bool = True, orient: bool = True) -> None:
        super().__init__()
        self.apply_voi = apply_voi
        self.orient = orient

    def verify_suffix(self, filename: Sequence[str | os.PathLike] | str | os.PathLike) -> bool:
        names = [Path(f) for f in ensure_tuple(filename)]
        return all(n.suffix.lower() in (".dcm", ".dicom") or is_dicom_file(n) for n in names)

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
        orientation = [str(v) for v in (img.get("PatientOrientation") or ())]
        flips = orientation_flips(orientation) if self.orient else (False, False)
        axes = [axis for axis, flip in enumerate(flips) if flip]
        if axes:
            pixels = np.ascontiguousarray(np.flip(pixels, axes))
        spatial = pixels.shape[:2]
        spacing = img.get("PixelSpacing") or img.get("ImagerPixelSpacing") or (1.0, 1.0)
        meta = {  # no affine: like PILReader's pictures, so that batches mixing formats collate
            MetaKeys.SPATIAL_SHAPE: np.asarray(spatial),
            MetaKeys.ORIGINAL_CHANNEL_DIM: float("nan") if pixels.ndim == 2 else -1,
            "pixel_spacing": np.asarray([float(spacing[0]), float(spacing[1])]),
            "photometric_interpretation": photometric,
            "modality": str(img.get("Modality", "")),
            "patient_orientation": "\\".join(orientation),
            DISPLAY_FLIPS: np.asarray(flips),
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
    """Load radiographs with MONAI's ``LoadImage``, choosing the reader from the file's content, not its name.

    :func:`detect_format` decides: DICOM -> :class:`XRayDicomReader`; NIfTI -> :class:`XRayNiftiReader`; PNG, JPEG,
    TIFF, BMP, GIF -> ``PILReader(converter=picture_policy, reverse_indexing=False)`` (see :func:`picture_policy`:
    one frame, upright, palette colours, CMYK and other colour spaces as RGB, 8/16/32-bit and float grey kept).
    A name that disagrees with the content is logged as a warning; the content decides. The result is a float32
    ``MetaTensor``, rows first: grey ``[1, H, W]`` or colour ``[3, H, W]``; an alpha channel (grey + alpha, RGBA)
    is dropped, since it is no part of the picture.

    Every problem raises naming the file: ``FileNotFoundError`` for a missing file, ``ValueError`` for one that
    cannot be read (zero bytes, truncated, not an accepted format, no pixel data, a volume, several frames), for a
    picture smaller than ``min_size`` on a side or larger than ``max_pixels`` (checked from the header, before
    decoding) and for non-finite pixels (NaN or infinity in float TIFF or NIfTI data).

    Args:
        keys: keys holding file paths.
        apply_voi: apply DICOM VOI LUTs and windows, see :class:`XRayDicomReader`. Defaults to True.
        orient: flip DICOM images to the display their ``PatientOrientation`` calls for, see
            :class:`XRayDicomReader`. Defaults to True.
        min_size: smallest accepted side in pixels. Defaults to 32.
        max_pixels: largest accepted image in pixels. Defaults to 8192 x 8192.
    """

    def __init__(
        self,
        keys: KeysCollection,
        apply_voi: bool = True,
        orient: bool = True,
        min_size: int = 32,
        max_pixels: int = 8192 * 8192,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.dicom, self.nifti = XRayDicomReader(apply_voi, orient), XRayNiftiReader()
        self.picture = PILReader(converter=picture_policy, reverse_indexing=False, formats=PICTURE_FORMATS)
        self.loader = LoadImage(
            reader=[self.picture, self.nifti, self.dicom], image_only=True, ensure_channel_first=True, dtype=np.float32
        )
        self.min_size = min_size
        self.max_pixels = max_pixels

    def reader_for(self, path: str | os.PathLike) -> ImageReader:
        """The reader that will read ``path``, from its content (:func:`detect_format`).

        Logs a warning when the name says another format. Raises ``ValueError`` naming the file for content of no
        accepted format and for a NIfTI file whose name nibabel cannot decode it by.
        """
        found = detect_format(path)
        named = _suffix_format(path)
        if named is not None and named != found:
            logger.warning("%s: the content is %s, not %s as the name says; read as %s", path, found, named, found)
        if found == "DICOM":
            return self.dicom
        if found == "NIfTI":
            _check_nifti_name(path)
            return self.nifti
        return self.picture

    def _stored_size(self, path: str, reader: ImageReader) -> tuple[int, int]:
        """Rows and columns from the file header, without decoding the pixels; a volume (several DICOM frames or
        NIfTI slices) is refused here, before its pixels are decoded."""
        if reader is self.dicom:
            import pydicom

            header = pydicom.dcmread(path, stop_before_pixels=True)
            frames = int(header.get("NumberOfFrames", 1) or 1)
            if frames > 1:
                raise ValueError(f"{path}: DICOM holds {frames} frames (a volume or cine); expected one 2D radiograph")
            return int(header.get("Rows", 0)), int(header.get("Columns", 0))
        if reader is self.nifti:
            import nibabel

            shape = tuple(int(d) for d in nibabel.load(path).shape)
            if any(d > 1 for d in shape[2:]):
                raise ValueError(f"{path}: NIfTI image has shape {shape}; expected one 2D radiograph")
            return (shape[1], shape[0]) if len(shape) >= 2 else (shape[0], 1)
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
    :class:`LoadXRayd`'s pictures (MONAI ``PILReader(reverse_indexing=False)``). A map is drawn on the stored
    pixels of its image, so when that image was flipped for display (a DICOM file's ``PatientOrientation``) the map
    is flipped the same way (:func:`follow_display`).

    Args:
        keys: keys holding file paths.
        reference_key: key of the already loaded image the maps belong to. Defaults to ``"image"``.
    """

    def __init__(self, keys: KeysCollection, reference_key: str = "image", allow_missing_keys: bool = False) -> None:
        super().__init__(
            keys,
            reader=PILReader(reverse_indexing=False),
            image_only=True,
            ensure_channel_first=True,
            allow_missing_keys=allow_missing_keys,
        )
        self.reference_key = reference_key

    def __call__(self, data: Mapping[Hashable, Any], reader: ImageReader | None = None) -> dict[Hashable, Any]:
        d = super().__call__(data, reader)
        reference = d.get(self.reference_key)
        for key in self.key_iterator(d):
            d[key] = follow_display(d[key], reference)
        return d


LoadXRayD = LoadXRayDict = LoadXRayd
LoadLabelMapD = LoadLabelMapDict = LoadLabelMapd
