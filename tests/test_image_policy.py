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
"""The one image-decoding policy (docs/inference.md, "Image input"): the format comes from the content, every Pillow
mode becomes the picture it shows (palette colours, CMYK, upright by EXIF), several frames are refused, and no
corrupted file gives anything but a picture or an error naming it."""

from __future__ import annotations

import gzip
import logging
import re
import shutil
import threading
import time

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from medslip_monai.data import LoadXRayd, list_images
from medslip_monai.data.readers import detect_format, picture_policy
from tests.test_image_input import RAMP, assert_same_picture, dicom, load, picture

__all__: list[str] = []

GREY = picture(255).astype(np.uint8)  # the known picture, 8 bits
READER_LOG = "medslip_monai.data.readers"


def _save(image: Image.Image, path, **options):
    image.save(path, **options)
    return path


def test_palette_png_in_grey_gives_its_grey_values_not_the_indices(tmp_path):
    indices = (255 - GREY).astype(np.uint8)  # index i shows grey 255 - i: the indices are the negative
    palette = Image.fromarray(indices, "P")
    palette.putpalette([value for i in range(256) for value in (255 - i,) * 3])
    path = _save(palette, tmp_path / "grey_palette.png")
    assert Image.open(path).mode == "P"
    loaded = load(path)
    np.testing.assert_array_equal(loaded, GREY[None].astype(np.float32))
    assert_same_picture(loaded)


def test_palette_png_in_colour_gives_its_colours(tmp_path):
    colours = np.stack([GREY, GREY // 2, GREY // 4], -1)  # a tinted picture
    indices = (255 - GREY).astype(np.uint8)
    palette = Image.fromarray(indices, "P")
    palette.putpalette([int(c) for i in range(256) for c in (255 - i, (255 - i) // 2, (255 - i) // 4)])
    palette.info["transparency"] = 3  # a transparent entry: alpha is dropped, the colour stays
    path = _save(palette, tmp_path / "colour_palette.png")
    assert Image.open(path).mode == "P" and "transparency" in Image.open(path).info
    loaded = load(path)
    np.testing.assert_array_equal(loaded, np.moveaxis(colours, -1, 0).astype(np.float32))
    assert_same_picture(loaded, channels=3)


def _cmyk_of_grey(inks: str) -> Image.Image:
    """The grey picture in CMYK: with black ink only (``"k"``) or with cyan, magenta and yellow (``"cmy"``)."""
    if inks == "k":
        return Image.fromarray(GREY).convert("CMYK")  # Pillow: K = 255 - grey
    ink = Image.fromarray(255 - GREY)
    return Image.merge("CMYK", (ink, ink, ink, Image.new("L", ink.size, 0)))


@pytest.mark.parametrize("inks", ["k", "cmy"])
def test_cmyk_jpeg_of_a_grey_picture_comes_out_as_that_picture(tmp_path, caplog, inks):
    """Pillow writes CMYK JPEGs the way Photoshop does (Adobe APP14 marker, inverted ink values) and reads them
    with that convention; the policy converts to RGB. Not black (what the raw CMYK array gave) and not inverted."""
    path = _save(_cmyk_of_grey(inks), tmp_path / "cmyk.jpg", quality=95)
    assert b"Adobe" in path.read_bytes()[:64] and Image.open(path).mode == "CMYK"
    with caplog.at_level(logging.WARNING, logger=READER_LOG):
        loaded = load(path)
    assert [record for record in caplog.records if record.name == READER_LOG] == []
    assert_same_picture(loaded, channels=3, min_correlation=0.99)
    error = np.abs(loaded - GREY[None])  # the values, not only the shape of the picture: JPEG's loss only
    assert error.max() <= 8 and error.mean() <= 1.5


def test_cmyk_jpeg_without_adobe_marker_and_cmyk_tiff(tmp_path, caplog):
    data = _save(_cmyk_of_grey("k"), tmp_path / "cmyk.jpg", quality=95).read_bytes()
    start = data.index(b"\xff\xee")  # the Adobe APP14 segment: marker, length, payload
    length = int.from_bytes(data[start + 2 : start + 4], "big")
    (tmp_path / "bare.jpg").write_bytes(data[:start] + data[start + 2 + length :])
    with caplog.at_level(logging.WARNING, logger=READER_LOG):
        bare = load(tmp_path / "bare.jpg")
    assert "bare.jpg: CMYK JPEG without an Adobe marker" in caplog.text
    assert np.abs(bare - GREY[None]).max() <= 8
    tiff = load(_save(_cmyk_of_grey("cmy"), tmp_path / "cmyk.tif"))  # TIFF stores ink values as they are
    np.testing.assert_array_equal(tiff, np.stack([GREY] * 3).astype(np.float32))


ORIENTATIONS = [  # EXIF orientation -> how the upright picture is stored so that a viewer shows it upright
    (2, Image.Transpose.FLIP_LEFT_RIGHT),
    (3, Image.Transpose.ROTATE_180),
    (4, Image.Transpose.FLIP_TOP_BOTTOM),
    (5, Image.Transpose.TRANSPOSE),
    (6, Image.Transpose.ROTATE_90),
    (7, Image.Transpose.TRANSVERSE),
    (8, Image.Transpose.ROTATE_270),
]


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


@pytest.mark.parametrize("orientation, stored", ORIENTATIONS)
def test_exif_rotated_jpeg_comes_out_upright(tmp_path, orientation, stored):
    path = _save(Image.fromarray(GREY).transpose(stored), tmp_path / "x.jpg", quality=95, exif=_exif(orientation))
    assert Image.open(path).getexif()[0x0112] == orientation
    assert_same_picture(load(path), min_correlation=0.99)


@pytest.mark.parametrize("orientation, stored", ORIENTATIONS)
def test_exif_orientation_of_16_bit_png_and_tiff(tmp_path, orientation, stored):
    """PNG (eXIf chunk) and TIFF (orientation tag, which Pillow applies itself on loading, and of an uncompressed
    strip, the case its memory mapping scrambles when the orientation transposes): upright and exact."""
    stored = Image.fromarray(picture(65535).astype(np.uint16)).transpose(stored)
    png = _save(stored, tmp_path / "x.png", exif=_exif(orientation))
    tiff = _save(stored, tmp_path / "x.tif", tiffinfo={0x0112: orientation})
    for path in (png, tiff):
        np.testing.assert_array_equal(load(path)[0], picture(65535))


def _frames(count: int) -> list[Image.Image]:
    return [Image.fromarray(GREY if k % 2 == 0 else 255 - GREY) for k in range(count)]


@pytest.mark.parametrize(
    "name, count, options",
    [
        ("anim.png", 2, {}),
        ("pages.tif", 3, {}),
        ("anim.gif", 2, {"duration": 100, "loop": 0}),
    ],
)
def test_several_frames_are_refused_with_the_count(tmp_path, name, count, options):
    first, *rest = _frames(count)
    path = _save(first, tmp_path / name, save_all=True, append_images=rest, **options)
    assert Image.open(path).n_frames == count
    with pytest.raises(ValueError, match=re.escape(name) + rf": \w+ file holds {count} frames"):
        load(path)


def test_single_frame_gif_and_mpo_primary_picture_are_read(tmp_path):
    np.testing.assert_array_equal(load(_save(Image.fromarray(GREY), tmp_path / "x.gif"))[0], GREY)
    first, second = _frames(2)
    mpo = _save(first, tmp_path / "camera.jpg", format="MPO", save_all=True, append_images=[second])
    assert Image.open(mpo).format == "MPO"
    assert_same_picture(load(mpo), min_correlation=0.99)  # the primary picture, by the MPO standard


def test_dicom_named_png_is_read_as_dicom_with_monochrome1_inverted(tmp_path, caplog):
    dicom(tmp_path / "x.dcm", 4095 - picture(4095), "MONOCHROME1", bits=12)
    shutil.copy(tmp_path / "x.dcm", tmp_path / "x.png")
    assert detect_format(tmp_path / "x.png") == "DICOM"
    with caplog.at_level(logging.WARNING, logger=READER_LOG):
        loaded = load(tmp_path / "x.png")
    assert "x.png: the content is DICOM, not PNG as the name says" in caplog.text
    assert_same_picture(loaded)
    np.testing.assert_array_equal(loaded, load(tmp_path / "x.dcm"))


def test_png_named_dcm_is_read_as_png(tmp_path, caplog):
    path = _save(Image.fromarray(GREY), tmp_path / "x.png")
    shutil.copy(path, tmp_path / "x.dcm")
    with caplog.at_level(logging.WARNING, logger=READER_LOG):
        loaded = load(tmp_path / "x.dcm")
    assert "x.dcm: the content is PNG, not DICOM" in caplog.text
    np.testing.assert_array_equal(loaded, load(path))


def test_dicom_listed_and_read_whatever_its_name(tmp_path):
    uid_named = tmp_path / "1.2.826.0.1.3680043.8.498.1"  # PACS exports name files by their UID
    dicom(uid_named, picture(4095), bits=12)
    shutil.copy(uid_named, tmp_path / "DICOMDIR")  # an index: never a picture, not listed
    (tmp_path / "notes.1").write_text("not an image")
    assert [item["image"] for item in list_images(tmp_path)] == [str(uid_named)]
    assert_same_picture(load(uid_named))


@pytest.mark.parametrize(
    "name, content",
    [
        ("notes.png", b"Patient name: none. This is a text file, not a picture.\n" * 4),
        ("photo.png", b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(40)),  # WebP: Pillow reads it, the policy does not
        ("scan.nii.gz", gzip.compress(b"not a NIfTI header" * 40)),
        ("short.dcm", b"DIC"),
    ],
)
def test_unknown_content_is_refused_naming_the_file_and_the_formats(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(name) + r": cannot read the image: .*PNG, JPEG, TIFF"):
        load(tmp_path / name)


def test_empty_file_is_refused_by_name(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.jpg: cannot read the image: the file is empty"):
        load(tmp_path / "empty.jpg")


def test_nifti_is_found_by_content_and_a_misleading_name_refused(tmp_path, caplog):
    nib.save(nib.Nifti1Image(picture(4095).T.astype(np.float32), np.eye(4)), tmp_path / "x.nii.gz")
    assert detect_format(tmp_path / "x.nii.gz") == "NIfTI"
    for wrong in ("x.nii", "x.png"):  # nibabel decodes by name: gzip content needs .nii.gz
        shutil.copy(tmp_path / "x.nii.gz", tmp_path / wrong)
        assert detect_format(tmp_path / wrong) == "NIfTI"
        with pytest.raises(ValueError, match=re.escape(wrong) + r": .*rename the file to end in \.nii\.gz"):
            load(tmp_path / wrong)
    dicom(tmp_path / "ct.nii", picture(4095), bits=12)  # DICOM under a NIfTI name: read as DICOM
    with caplog.at_level(logging.WARNING, logger=READER_LOG):
        assert_same_picture(load(tmp_path / "ct.nii"))
    assert "ct.nii: the content is DICOM, not NIfTI" in caplog.text


@pytest.mark.parametrize("suffix", ["png", "tif"])
def test_bilevel_becomes_grey_of_0_and_255(tmp_path, suffix):
    path = _save(Image.fromarray(RAMP > 0.5), tmp_path / f"x.{suffix}")
    assert Image.open(path).mode == "1"
    np.testing.assert_array_equal(load(path)[0], (RAMP > 0.5) * 255.0)


@pytest.mark.parametrize(
    "mode, values",
    [
        ("F", (RAMP * 3000 - 1000.25).astype(np.float32)),
        ("I", (picture(100000) - 20000).astype(np.int32)),
        ("I;16B", picture(65535).astype(">u2")),
    ],
)
def test_float_and_wide_integer_tiff_keep_their_values(tmp_path, mode, values):
    path = _save(Image.fromarray(values), tmp_path / "x.tif")
    assert Image.open(path).mode == mode
    np.testing.assert_array_equal(load(path)[0], values.astype(np.float32))


def _in_mode(mode: str) -> Image.Image:
    """The grey picture in Pillow mode ``mode``, built in memory."""
    grey = Image.fromarray(GREY)
    if mode == "I;16B":
        return Image.fromarray(GREY.astype(">u2"))
    if mode in ("La", "PA"):
        return grey.convert("LA" if mode == "La" else "P").convert(mode)
    if mode in ("RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        return grey.convert("RGB").convert(mode)
    return grey.convert(mode)


@pytest.mark.parametrize(
    "mode, result",
    [
        ("L", "L"),
        ("LA", "LA"),
        ("La", "LA"),
        ("P", "L"),
        ("PA", "L"),
        ("RGB", "RGB"),
        ("RGBA", "RGBA"),
        ("RGBa", "RGBA"),
        ("RGBX", "RGB"),
        ("CMYK", "RGB"),
        ("YCbCr", "RGB"),
        ("LAB", "RGB"),
        ("HSV", "RGB"),
        ("I", "I"),
        ("I;16", "I;16"),
        ("I;16B", "I;16B"),
        ("F", "F"),
    ],
)
def test_policy_table_every_mode_gives_the_picture(mode, result):
    image = _in_mode(mode)
    assert image.mode == mode
    converted = picture_policy(image)
    assert converted.mode == result
    if result == mode:
        assert converted is image  # nothing to do: the decoded picture as it is
    pixels = np.asarray(converted, np.float64)
    grey = pixels if pixels.ndim == 2 else pixels[..., : 3 if pixels.shape[-1] >= 3 else 1].mean(-1)
    assert np.abs(grey - GREY).max() <= 2


def test_a_mode_without_a_rule_is_refused(tmp_path):
    class Odd:  # what a future Pillow mode would look like to the policy
        filename, format, mode, n_frames, info = str(tmp_path / "odd.tif"), "TIFF", "I;12", 1, {}

        def getexif(self):
            return {}

    with pytest.raises(ValueError, match=r"odd\.tif: Pillow decodes it as mode 'I;12', which has no rule here"):
        picture_policy(Odd())


def _corruptions(data: bytes, rng: np.random.Generator, count: int):
    """``count`` corruptions of each kind: truncated, random bytes flipped, a header span zeroed."""
    for _ in range(count):
        yield "truncated", data[: int(rng.integers(0, len(data)))]
        flipped = bytearray(data)
        for offset in rng.integers(0, len(data), int(rng.integers(1, 9))):
            flipped[offset] ^= int(rng.integers(1, 256))
        yield "flipped", bytes(flipped)
        zeroed = bytearray(data)
        start = int(rng.integers(0, 200))
        zeroed[start : start + int(rng.integers(1, 140))] = bytes(len(zeroed[start : start + 140]))
        yield "zeroed", bytes(zeroed)


def _bounded(call, seconds: float):
    """``call()``'s result or exception, run in a thread that must finish within ``seconds`` (no hang)."""
    outcome: list = []

    def run():
        try:
            outcome.append(call())
        except BaseException as e:  # the test sorts outcomes; nothing may escape unseen
            outcome.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"reading did not finish within {seconds} s"
    return outcome[0]


@pytest.mark.parametrize("kind", ["png", "jpg", "tif", "dcm"])
def test_fuzzed_files_give_a_picture_or_an_error_naming_the_file(tmp_path, kind):
    good = tmp_path / f"good.{kind}"
    if kind == "dcm":
        dicom(good, picture(4095), bits=12)
    elif kind == "tif":
        Image.fromarray(picture(65535).astype(np.uint16)).save(good)
    else:
        Image.fromarray(GREY).save(good, **({"quality": 90} if kind == "jpg" else {}))
    reader = LoadXRayd("image")
    rng = np.random.default_rng(16)
    started, kinds = time.monotonic(), set()
    logging.getLogger(READER_LOG).setLevel(logging.ERROR)  # renamed-format warnings: expected, not checked here
    try:
        for k, (how, data) in enumerate(_corruptions(good.read_bytes(), rng, 25)):
            path = tmp_path / f"case{k:03d}_{how}.{kind}"
            path.write_bytes(data)
            outcome = _bounded(lambda path=path: reader({"image": str(path)})["image"], 5.0)
            if isinstance(outcome, torch.Tensor):
                kinds.add("picture")
                assert outcome.dtype == torch.float32 and outcome.ndim == 3 and outcome.shape[0] in (1, 3), path
                assert min(outcome.shape[1:]) >= 32 and bool(torch.isfinite(outcome).all()), path
            else:
                kinds.add("error")
                assert isinstance(outcome, (ValueError, FileNotFoundError)), f"{path.name}: {outcome!r}"
                assert path.name in str(outcome), f"{path.name}: {outcome}"
    finally:
        logging.getLogger(READER_LOG).setLevel(logging.NOTSET)
    assert kinds == {"picture", "error"} or kind == "png"  # PNG checksums catch nearly every change
    assert time.monotonic() - started < 15
