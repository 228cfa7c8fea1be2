"""The one implementation of image decoding and preprocessing.

Training's prepare stage stores `load_image(...)` arrays, training's evaluation path and the serving
handler turn such arrays into model input with `to_model_input(...)`; so an image gives the same tensor
in both. Deliberately free of torchvision: it runs in the slim CPU serving image.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps

from handler.verdict import CLASS_NAMES  # noqa: F401  (re-exported: training and serving read it here too)

IMAGE_SIZE = 224
# ImageNet statistics: a well-known, fixed choice, so the model contract never depends on a dataset.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
DEFAULT_MAX_PIXELS = 40_000_000  # guards against decompression bombs
# JPEG decoders can scale by 1/2, 1/4 or 1/8 while decoding (DCT scaling), which makes a 12-megapixel
# phone photo several times cheaper to decode than in full. The scaled image keeps at least this
# many pixels on each side, so resize() still shrinks it by 2x or more with its antialiasing filter;
# photos under twice this size on a side (every one of the shared training photos) decode in full.
DRAFT_MIN_SIDE = 2 * IMAGE_SIZE


class InvalidImage(ValueError):
    """The bytes are not an image this service can use; the message says why."""


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, draft: bool = True) -> Image.Image:
    """Decode bytes into an upright RGB image, or raise InvalidImage with the reason.

    A large JPEG comes out scaled down to no less than DRAFT_MIN_SIDE a side unless `draft` is False.
    """
    if not data:
        raise InvalidImage("empty image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidImage(
                    f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}"
                )
            image.seek(0)  # animated images: the first frame
            if draft:
                image.draft(None, (DRAFT_MIN_SIDE, DRAFT_MIN_SIDE))  # a no-op for other formats
            image.load()
            ImageOps.exif_transpose(image, in_place=True)  # not a copy of every upright photo
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InvalidImage(f"image too large: {e}") from e
    except Image.UnidentifiedImageError as e:
        raise InvalidImage("not a recognised image format") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise InvalidImage(f"cannot decode image: {e}") from e
    return _to_rgb(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # Pillow's own conversion clips 16-bit values at 255 (a white picture); scale instead.
        array = np.asarray(image, dtype=np.float64)
        scale = 255.0 / 65535.0 if image.mode != "I" or array.max() > 255 else 1.0
        gray = np.clip(array * scale, 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent areas become white, as a browser would show them on a page.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def resize(image: Image.Image) -> np.ndarray:
    """An RGB image -> IMAGE_SIZE x IMAGE_SIZE x 3 uint8 (the whole picture, aspect not kept)."""
    resized = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
    # np.array (a writable copy), not np.asarray: torch warns on read-only arrays.
    return np.array(resized, dtype=np.uint8)


def load_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Bytes -> the stored/served form: IMAGE_SIZE x IMAGE_SIZE x 3 uint8 RGB."""
    return resize(decode_image(data, max_pixels))


_MEAN = torch.tensor(MEAN).view(1, 3, 1, 1)
_STD = torch.tensor(STD).view(1, 3, 1, 1)


def to_model_input(images: np.ndarray | torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """uint8 images (N x H x W x 3 if channels_last, else N x 3 x H x W) -> normalised float N x 3 x H x W."""
    batch = torch.as_tensor(images)
    if batch.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {batch.dtype}")
    if batch.ndim == 3:
        batch = batch.unsqueeze(0)
    if channels_last:
        batch = batch.permute(0, 3, 1, 2)
    return (batch.float().div_(255.0) - _MEAN) / _STD
