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
"""Radiograph input: PNG/JPEG/TIFF, DICOM (photometry, LUTs, compressed syntaxes), NIfTI, and a real chest CR."""

from __future__ import annotations

import io
import zipfile

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from medslip_monai.assets import fetch_wheel
from medslip_monai.data import LoadXRayd, list_images

HEIGHT, WIDTH = 48, 64  # not square, so a transposed image cannot pass
BRIGHT = (slice(4, 14), slice(6, 22))  # a bright block near the top left of the picture


def _ramp() -> np.ndarray:
    ramp = np.tile(np.linspace(0.05, 0.35, WIDTH), (HEIGHT, 1))
    ramp[BRIGHT] = 0.95
    return ramp


RAMP = _ramp()  # grey picture [H, W] in [0, 1]: a dim left-to-right ramp with a bright block at the top left


def picture(maximum: int) -> np.ndarray:
    """``RAMP`` in integer steps up to ``maximum``."""
    return np.round(RAMP * maximum)


def load(path) -> np.ndarray:
    image = LoadXRayd("image")({"image": str(path)})["image"]
    assert image.dtype.is_floating_point
    return image.numpy()


def assert_same_picture(loaded: np.ndarray, channels: int = 1, min_correlation: float = 0.999) -> None:
    """Right shape, right way up and right polarity: the bright block is bright and the ramp rises to the right."""
    assert loaded.shape == (channels, HEIGHT, WIDTH)
    grey = loaded.mean(0)
    assert np.corrcoef(grey.ravel(), RAMP.ravel())[0, 1] >= min_correlation


@pytest.mark.parametrize(
    "mode, maximum, channels",
    [("L", 255, 1), ("I;16", 65535, 1), ("RGB", 255, 3), ("RGBA", 255, 3), ("LA", 255, 1)],
)
def test_png_of_8_and_16_bits_grey_rgb_and_rgba(tmp_path, mode, maximum, channels):
    grey = picture(maximum).astype(np.uint16 if mode == "I;16" else np.uint8)
    """Grey and colour pictures keep their channels; an alpha channel (RGBA, grey + alpha) is dropped."""
    if mode in ("RGB", "RGBA", "LA"):
        stack = [grey] * (1 if mode == "LA" else 3) + ([np.full_like(grey, 255)] if "A" in mode else [])
        image = Image.fromarray(np.stack(stack, -1), mode)
    else:
        image = Image.fromarray(grey)  # uint8 -> L, uint16 -> I;16
    image.save(tmp_path / "x.png")
    assert_same_picture(load(tmp_path / "x.png"), channels)


def test_jpeg_and_tiff(tmp_path):
    Image.fromarray(picture(255).astype(np.uint8)).save(tmp_path / "x.jpg", quality=95)
    Image.fromarray(picture(65535).astype(np.uint16)).save(tmp_path / "x.tif")
    assert_same_picture(load(tmp_path / "x.jpg"), min_correlation=0.99)
    assert_same_picture(load(tmp_path / "x.tif"))


def dicom(path, pixels: np.ndarray, photometric: str = "MONOCHROME2", bits: int = 16, **attributes) -> Dataset:
    """A minimal DX-like DICOM file of ``pixels`` (unsigned, native little endian) with extra attributes."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated = 8 if bits <= 8 else 16
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
    ds.PixelData = pixels.astype(np.uint8 if bits <= 8 else np.uint16).tobytes()
    for key, value in attributes.items():
        setattr(ds, key, value)
    ds.save_as(path, enforce_file_format=True)
    return ds


@pytest.mark.parametrize("bits", [12, 15, 16])
def test_dicom_monochrome2_of_12_to_16_bits(tmp_path, bits):
    dicom(tmp_path / "x.dcm", picture(2**bits - 1), bits=bits)
    assert_same_picture(load(tmp_path / "x.dcm"))


def test_dicom_monochrome1_is_inverted_so_that_dense_is_bright(tmp_path):
    dicom(tmp_path / "x.dcm", 4095 - picture(4095), "MONOCHROME1", bits=12)  # stored: high = dark
    assert_same_picture(load(tmp_path / "x.dcm"))
    dicom(tmp_path / "y.dcm", picture(4095), "MONOCHROME2", bits=12, PresentationLUTShape="INVERSE")
    loaded = load(tmp_path / "y.dcm")
    assert np.corrcoef(loaded[0].ravel(), RAMP.ravel())[0, 1] <= -0.999


def test_dicom_window_and_voi_lut_sequence_are_applied(tmp_path):
    stored = picture(4095)
    dicom(tmp_path / "window.dcm", stored, bits=12, WindowCenter=1000, WindowWidth=600)
    windowed = load(tmp_path / "window.dcm")[0]
    assert windowed[BRIGHT].std() == 0 and windowed[BRIGHT].min() == windowed.max()  # saturated above the window
    ramp = windowed[30]  # a row of the ramp, partly inside the window
    assert ramp[0] == windowed.min() and np.all(np.diff(ramp) >= 0) and ramp[-1] > ramp[0]
    assert not np.array_equal(windowed, load_without_voi(tmp_path / "window.dcm"))

    lut = Dataset()
    lut.LUTDescriptor = [4096, 0, 16]
    lut.add_new(0x00283006, "US", [int(v) for v in np.round(np.sqrt(np.arange(4096) / 4095) * 65535)])  # LUTData
    dicom(tmp_path / "lut.dcm", stored, bits=12, VOILUTSequence=[lut])
    loaded = load(tmp_path / "lut.dcm")[0]
    np.testing.assert_allclose(loaded, np.round(np.sqrt(stored / 4095) * 65535), atol=1)


def load_without_voi(path) -> np.ndarray:
    return LoadXRayd("image", apply_voi=False)({"image": str(path)})["image"].numpy()[0]


def test_dicom_rescale_slope_and_intercept(tmp_path):
    dicom(tmp_path / "x.dcm", picture(1000), bits=12, RescaleSlope=2, RescaleIntercept=-500)
    loaded = load(tmp_path / "x.dcm")[0]
    np.testing.assert_allclose(loaded, picture(1000) * 2 - 500)


def _encapsulated(tmp_path, name, pixels, syntax, image_format, **save_args):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format, **save_args)
    ds = dicom(tmp_path / name, pixels, bits=8 if pixels.dtype == np.uint8 else 16)
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / name, enforce_file_format=True)
    return tmp_path / name


def test_compressed_dicom_rle_jpeg_and_jpeg2000(tmp_path):
    ds = dicom(tmp_path / "rle.dcm", picture(4095), bits=12)
    ds.compress(RLELossless)
    ds.save_as(tmp_path / "rle.dcm", enforce_file_format=True)
    assert pydicom.dcmread(tmp_path / "rle.dcm").file_meta.TransferSyntaxUID == RLELossless
    assert_same_picture(load(tmp_path / "rle.dcm"))

    j2k = _encapsulated(
        tmp_path,
        "j2k.dcm",
        picture(4095).astype(np.uint16),
        JPEG2000Lossless,
        "JPEG2000",
        irreversible=False,
        no_jp2=True,
    )
    np.testing.assert_allclose(load(j2k)[0], picture(4095))
    jpeg = _encapsulated(tmp_path, "jpeg.dcm", picture(255).astype(np.uint8), JPEGBaseline8Bit, "JPEG", quality=95)
    assert_same_picture(load(jpeg), min_correlation=0.99)


def test_dicom_without_suffix_is_listed_and_read(tmp_path):
    dicom(tmp_path / "IM0001", picture(4095), bits=12)
    (tmp_path / "notes.txt").write_text("not an image")
    Image.fromarray(picture(255).astype(np.uint8)).save(tmp_path / "b.png")
    items = list_images(tmp_path)
    assert [item["image"] for item in items] == [str(tmp_path / "IM0001"), str(tmp_path / "b.png")]
    assert_same_picture(load(tmp_path / "IM0001"))


def test_dicom_without_pixels_or_with_many_frames_is_refused_by_name(tmp_path):
    ds = dicom(tmp_path / "empty.dcm", picture(255), bits=8)
    del ds.PixelData
    ds.save_as(tmp_path / "empty.dcm", enforce_file_format=True)
    with pytest.raises(ValueError, match=r"empty\.dcm: DICOM file has no pixel data"):
        load(tmp_path / "empty.dcm")
    volume = np.concatenate([picture(255)] * 3)  # three frames, stored one after the other
    dicom(tmp_path / "volume.dcm", volume, bits=8, NumberOfFrames=3, Rows=HEIGHT)
    with pytest.raises(ValueError, match=r"volume\.dcm: DICOM holds 3 frames"):
        load(tmp_path / "volume.dcm")


def test_nifti_radiograph_and_refused_volume(tmp_path):
    nib.save(nib.Nifti1Image(picture(4095).T.astype(np.float32), np.eye(4)), tmp_path / "x.nii.gz")
    assert_same_picture(load(tmp_path / "x.nii.gz"))
    nib.save(nib.Nifti1Image(picture(4095).T[..., None].astype(np.int16), np.eye(4)), tmp_path / "y.nii")
    assert_same_picture(load(tmp_path / "y.nii"))
    nib.save(nib.Nifti1Image(np.zeros((16, 16, 5), np.float32), np.eye(4)), tmp_path / "ct.nii.gz")
    with pytest.raises(ValueError, match=r"ct\.nii\.gz: NIfTI image has shape \(16, 16, 5\)"):
        load(tmp_path / "ct.nii.gz")


def test_unreadable_and_missing_files_are_named(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(ValueError, match=r"broken\.png"):
        load(tmp_path / "broken.png")
    with pytest.raises(FileNotFoundError, match=r"gone\.dcm"):
        load(tmp_path / "gone.dcm")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        list_images(tmp_path / "empty")


@pytest.fixture(scope="module")
def real_chest_dicoms(tmp_path_factory):
    """The real adult PA chest CR of the NEMA WG04 set (RG1, MONOCHROME1, 15 bits), as stored and as JPEG 2000."""
    folder = tmp_path_factory.mktemp("rg1")
    with zipfile.ZipFile(fetch_wheel("pydicom-data")) as wheel:
        for variant in ("UNCR", "J2KR"):
            (folder / f"RG1_{variant}.dcm").write_bytes(wheel.read(f"data_store/data/RG1_{variant}.dcm"))
    return folder


def test_real_chest_cr_comes_out_with_dark_lungs_and_bright_bone(real_chest_dicoms):
    uncompressed = load(real_chest_dicoms / "RG1_UNCR.dcm")[0]
    assert pydicom.dcmread(real_chest_dicoms / "RG1_UNCR.dcm").PhotometricInterpretation == "MONOCHROME1"
    assert uncompressed.shape == (1955, 1841)
    rows = slice(int(0.30 * 1955), int(0.55 * 1955))
    right_lung = uncompressed[rows, int(0.20 * 1841) : int(0.35 * 1841)].mean()
    left_lung = uncompressed[rows, int(0.65 * 1841) : int(0.80 * 1841)].mean()
    spine = uncompressed[rows, int(0.46 * 1841) : int(0.54 * 1841)].mean()
    low, high = uncompressed.min(), uncompressed.max()
    assert max(right_lung, left_lung) < low + 0.75 * (spine - low) and spine > low + 0.75 * (high - low)
    np.testing.assert_array_equal(load(real_chest_dicoms / "RG1_J2KR.dcm")[0], uncompressed)  # lossless J2K
