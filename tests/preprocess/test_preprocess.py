"""The one preprocessing implementation: decoding every image kind upright RGB, shape, dtype, range."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from handler.preprocess import (
    DRAFT_MIN_SIDE,
    IMAGE_SIZE,
    MEAN,
    STD,
    InvalidImage,
    decode_image,
    load_image,
    to_model_input,
)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def half_red_half_blue(width: int = 64, height: int = 32) -> Image.Image:
    """Left half red, right half blue: orientation and colour are both checkable."""
    array = np.zeros((height, width, 3), dtype=np.uint8)
    array[:, : width // 2] = (255, 0, 0)
    array[:, width // 2 :] = (0, 0, 255)
    return Image.fromarray(array)


def test_load_image_shape_dtype():
    array = load_image(encode(half_red_half_blue(), "PNG"))
    assert array.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    assert array.dtype == np.uint8
    assert array[:, :100, 0].mean() > 250 and array[:, -100:, 2].mean() > 250


def test_model_input_shape_dtype_range():
    batch = np.stack([load_image(encode(half_red_half_blue(), "PNG"))] * 2)
    tensor = to_model_input(batch)
    assert tensor.shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert tensor.dtype == torch.float32
    low = (0 - np.array(MEAN)) / np.array(STD)
    high = (1 - np.array(MEAN)) / np.array(STD)
    for channel in range(3):
        assert tensor[:, channel].min() >= low[channel] - 1e-5
        assert tensor[:, channel].max() <= high[channel] + 1e-5
    # A single image gains the batch dimension.
    assert to_model_input(batch[0]).shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE)


def test_model_input_rejects_float_arrays():
    with pytest.raises(TypeError, match="uint8"):
        to_model_input(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32))


@pytest.mark.parametrize(
    "mode, fmt",
    [("L", "PNG"), ("CMYK", "JPEG"), ("P", "PNG"), ("RGBA", "PNG"), ("LA", "PNG"), ("RGB", "WEBP"), ("RGB", "BMP")],
)
def test_modes_and_formats_become_rgb(mode, fmt):
    image = half_red_half_blue().convert(mode)
    decoded = decode_image(encode(image, fmt))
    assert decoded.mode == "RGB" and decoded.size == (64, 32)


def test_sixteen_bit_grayscale_is_scaled_not_clipped():
    ramp = (np.linspace(0, 65535, 64 * 32).reshape(32, 64)).astype(np.uint16)
    decoded = np.asarray(decode_image(encode(Image.fromarray(ramp, mode="I;16"), "PNG")))
    assert decoded.min() < 10 and decoded.max() > 245  # the whole range survives
    assert 100 < decoded.mean() < 155


def test_transparent_pixels_become_white():
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert np.asarray(decode_image(encode(rgba, "PNG"))).min() == 255


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    pixel = np.asarray(decode_image(data))[8, 8]
    assert pixel[0] > 200 and pixel[1] < 50


def test_exif_rotation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90 degrees clockwise
    data = encode(half_red_half_blue(), "JPEG", exif=exif.tobytes(), quality=95)
    upright = np.asarray(decode_image(data))
    assert upright.shape == (64, 32, 3)  # width and height swapped
    assert upright[:20, :, 0].mean() > 200  # red (was left) is now on top
    assert upright[-20:, :, 2].mean() > 200


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"definitely not an image", "not a recognised image"),
        (encode(half_red_half_blue(), "JPEG")[:200], "cannot decode"),
    ],
)
def test_bad_bytes_raise_invalid_image(data, message):
    with pytest.raises(InvalidImage, match=message):
        decode_image(data)


def test_pixel_limit_is_enforced_before_decoding():
    data = encode(Image.new("RGB", (300, 300)), "PNG")
    with pytest.raises(InvalidImage, match="limit is 50000"):
        decode_image(data, max_pixels=50_000)
    assert decode_image(data, max_pixels=90_000).size == (300, 300)


def textured(width: int, height: int) -> Image.Image:
    """A smooth two-dimensional pattern: downscaling methods can be compared on it (noise would not do)."""
    y, x = np.mgrid[0:48, 0:64] / 64
    array = np.stack([np.sin(9 * x) + 1, np.cos(7 * y) + 1, np.sin(5 * (x + y)) + 1], axis=-1) * 127
    return Image.fromarray(array.astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)


@pytest.mark.parametrize(
    "size, decoded",
    [
        ((4032, 3024), (1008, 756)),  # a 12-megapixel phone photo: decoded at 1/4
        ((2000, 1500), (1000, 750)),  # at 1/2
        ((1023, 768), (1023, 768)),  # the largest shared photo: in full
        ((4032, 800), (4032, 800)),  # one short side: in full
    ],
)
def test_large_jpegs_decode_scaled_down_but_never_below_twice_the_model_size(size, decoded):
    data = encode(textured(*size), "JPEG", quality=90)
    image = decode_image(data)
    assert image.size == decoded and image.mode == "RGB"
    assert min(image.size) >= min(min(size), DRAFT_MIN_SIDE)
    assert decode_image(data, draft=False).size == size


def test_scaled_decoding_gives_the_model_the_same_picture():
    data = encode(textured(4032, 3024), "JPEG", quality=90)
    scaled = load_image(data).astype(int)
    full = np.array(decode_image(data, draft=False).resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR))
    assert np.abs(scaled - full.astype(int)).mean() < 1.0  # of 255 levels


def test_scaled_decoding_keeps_exif_rotation_and_png_untouched():
    exif = Image.Exif()
    exif[0x0112] = 6
    upright = decode_image(encode(half_red_half_blue(2000, 1000), "JPEG", exif=exif.tobytes(), quality=95))
    assert upright.size == (500, 1000)  # 1/2 (1000 // 448 = 2), then turned
    assert np.asarray(upright)[:200, :, 0].mean() > 200  # red (was left) is now on top
    assert decode_image(encode(textured(2000, 1500), "PNG")).size == (2000, 1500)  # PNG has no scaled decoding


def test_multi_picture_jpeg_from_a_phone_decodes_its_first_picture_scaled():
    first, second = Image.new("RGB", (2000, 1500), (200, 10, 10)), Image.new("RGB", (2000, 1500), (10, 200, 10))
    image = decode_image(encode(first, "MPO", save_all=True, append_images=[second]))
    assert image.size == (1000, 750)
    red, green, _ = np.asarray(image)[10, 10]
    assert red > 180 and green < 40
