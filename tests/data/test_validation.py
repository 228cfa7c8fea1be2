"""Every file is decoded for real: bad files are skipped with a reason, odd modes become upright RGB."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import training.data
from handler.preprocess import load_image
from tests.data.conftest import photo_bytes, write_photo
from training.data import SourceFile, decode_file, discover
from training.prepare import PrepareParams, prepare

MAX_PIXELS = 100_000  # small, so a 400 x 300 picture counts as too large


def _save(path: Path, image: Image.Image, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)


def _exif_rotated() -> Image.Image:
    """Stored sideways with orientation 6; upright it is red on top and blue below."""
    upright = Image.new("RGB", (60, 40), (255, 0, 0))
    upright.paste((0, 0, 255), (0, 20, 60, 40))
    return upright.rotate(90, expand=True)  # what a camera held sideways stores


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict[str, np.ndarray]]:
    """A folder full of trouble, prepared once: (report, {file: stored image})."""
    root = tmp_path_factory.mktemp("messy")
    for i in range(10):
        write_photo(root / "cats" / f"good_{i}.jpg", seed=i)
        write_photo(root / "dogs" / f"good_{i}.jpg", seed=100 + i)
    (root / "cats" / "empty.jpg").write_bytes(b"")
    (root / "cats" / "truncated.jpg").write_bytes(photo_bytes(7, size=(200, 200))[:3000])
    (root / "cats" / "text.jpg").write_text("this is not a picture")
    (root / "cats" / "random.png").write_bytes(np.random.default_rng(0).bytes(2000))
    write_photo(root / "cats" / "big.png", seed=8, size=(400, 300))
    (root / "cats" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 60)
    _save(root / "dogs" / "gray.jpg", Image.new("L", (40, 40), 128))
    _save(root / "dogs" / "cmyk.jpg", Image.new("CMYK", (40, 40), (0, 255, 255, 0)))
    _save(root / "dogs" / "palette.png", Image.new("RGB", (40, 40), (0, 0, 255)).convert("P"))
    _save(root / "dogs" / "rgba.png", Image.new("RGBA", (40, 40), (255, 0, 0, 0)))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    _save(root / "dogs" / "exif.jpg", _exif_rotated(), exif=exif)
    report = prepare(root, root.parent / "prepared", PrepareParams(max_pixels=MAX_PIXELS, seed=1))
    images = {}
    for split in ("train", "val", "test"):
        with np.load(root.parent / "prepared" / f"{split}.npz") as data:
            images.update(zip(data["files"].tolist(), data["images"], strict=True))
    return report, images


def test_bad_files_are_skipped_with_reasons(messy: tuple[dict, dict]) -> None:
    report, _ = messy
    reasons = {s["file"]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {
        f"cats/{n}" for n in ("empty.jpg", "truncated.jpg", "text.jpg", "random.png", "big.png", "Thumbs.db")
    }
    assert reasons["cats/empty.jpg"] == "empty image"
    assert "cannot decode" in reasons["cats/truncated.jpg"]
    assert reasons["cats/text.jpg"] == "not a recognised image format"
    assert reasons["cats/random.png"] == "not a recognised image format"
    assert "limit is 100000" in reasons["cats/big.png"]
    assert reasons["cats/Thumbs.db"] == "unsupported file type .db"


def test_counts_account_for_every_file(messy: tuple[dict, dict]) -> None:
    report, images = messy
    counts = report["counts"]
    assert counts["found"] == 31
    assert counts["found"] == counts["kept"] + counts["skipped"] + counts["duplicates"]
    assert counts["kept"] == sum(s["total"] for s in counts["splits"].values()) == len(images) == 25
    assert sum(s["cat"] for s in counts["splits"].values()) == 10
    assert report["synthetic"] is False


def test_every_stored_image_is_224_rgb_uint8(messy: tuple[dict, dict]) -> None:
    _, images = messy
    assert {(a.shape, a.dtype) for a in images.values()} == {((224, 224, 3), np.dtype(np.uint8))}


def test_grayscale_becomes_gray_rgb(messy: tuple[dict, dict]) -> None:
    gray = messy[1]["dogs/gray.jpg"].astype(int)
    assert np.abs(gray - 128).max() <= 2


@pytest.mark.parametrize(
    ("file", "colour"),
    [("dogs/cmyk.jpg", (255, 0, 0)), ("dogs/palette.png", (0, 0, 255)), ("dogs/rgba.png", (255, 255, 255))],
)
def test_cmyk_palette_and_transparency_become_rgb(messy: tuple[dict, dict], file: str, colour: tuple) -> None:
    pixels = messy[1][file].reshape(-1, 3).astype(int)
    assert np.abs(pixels - colour).max() <= 40, f"{file}: mean colour {pixels.mean(axis=0)}"


def test_exif_rotated_photo_is_stored_upright(messy: tuple[dict, dict]) -> None:
    image = messy[1]["dogs/exif.jpg"].astype(int)
    red, blue = np.array([255, 0, 0]), np.array([0, 0, 255])
    for x in (10, 112, 213):  # the whole top row is red and the bottom row blue only when upright
        assert np.abs(image[20, x] - red).max() < 60
        assert np.abs(image[203, x] - blue).max() < 60


def test_huge_files_are_skipped_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_photo(tmp_path / "cats" / "a.jpg", seed=1)
    monkeypatch.setattr(training.data, "MAX_FILE_BYTES", 100)
    result = decode_file(SourceFile(path, "cats/a.jpg", 0))
    assert result.image is None and result.reason.startswith("file too large")


def test_decoding_is_the_shared_preprocessing(tmp_path: Path) -> None:
    data = photo_bytes(3, size=(300, 200))
    path = tmp_path / "x.jpg"
    path.write_bytes(data)
    result = decode_file(SourceFile(path, "x.jpg", 1))
    assert np.array_equal(result.image, load_image(data))
    assert result.sha256 == hashlib.sha256(data).hexdigest()


def test_broken_links_are_reported_not_dropped(tmp_path: Path) -> None:
    write_photo(tmp_path / "cats" / "a.jpg", seed=1)
    write_photo(tmp_path / "dogs" / "b.jpg", seed=2)
    (tmp_path / "dogs" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    candidates, _ = discover(tmp_path)
    gone = next(c for c in candidates if c.file == "dogs/gone.jpg")
    assert decode_file(gone).reason.startswith("cannot read file")
