"""The embedded default dataset: procedurally drawn, clearly SYNTHETIC cat and dog pictures.

    python -m training.synthetic --out-dir data/synthetic [--params params.yaml]

Lets `make demo`, `dvc repro` and the tests run offline on a fresh clone. Cats have pointy triangular
ears, slit pupils and whiskers; dogs have floppy rounded ears, round pupils and a snout with a big
nose. Colours, position, size, tilt, background clutter and noise vary, and fur colours come from the
same distribution for both classes, so a CNN must learn shapes. Writes `train/cats` and `train/dogs`
JPEGs, a README.txt saying they are synthetic, and a `SYNTHETIC` marker that prepare turns into
`synthetic: true` in its report. The same seed gives byte-identical files.

`synthetic.neither` drawn NON-pet pictures (cars, houses, fruit, trees: no ears, eyes or fur, on the
same backgrounds) go to `neither/<kind>/`, the default prepare.neither_dir, so `make demo` exercises
the non-pet path offline. Adding them never changes a cat or dog picture.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw

from training.params import load_section

logger = logging.getLogger(__name__)
# Prepare looks for this file to set `synthetic: true` in its report.
SYNTHETIC_MARKER = "SYNTHETIC"
SIZE = 256  # drawn larger than the model input so prepare's resize is exercised as on real photos
CLASS_FOLDERS = ("cats", "dogs")  # label order of handler.preprocess.CLASS_NAMES
NEITHER_FOLDER = "neither"  # params.yaml prepare.neither_dir names data/synthetic/neither
README = """SYNTHETIC DATA - NOT PHOTOGRAPHS.

These images were drawn by training/synthetic.py (seed {seed}, {per_class} per class) so the pipeline
runs offline on a fresh clone. Cats: pointy ears, slit pupils, whiskers. Dogs: floppy ears, snout,
big nose. neither/ holds {neither} drawn non-pet pictures (cars, houses, fruit, trees). A model
trained on them knows nothing about real cats and dogs; use `make data` or point prepare.raw_dir in
params.yaml at a folder of real photos for that.
"""


@dataclasses.dataclass(frozen=True)
class SyntheticParams:
    """The `synthetic:` section of params.yaml."""

    per_class: int = 200
    seed: int = 0
    neither: int = 0  # drawn non-pet pictures in neither/ (0: the folder stays empty)

    def __post_init__(self) -> None:
        if self.per_class < 1:
            raise ValueError("synthetic.per_class must be at least 1")
        if self.neither < 0:
            raise ValueError("synthetic.neither must be 0 or more")


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, size=3))


def _background(rng: np.random.Generator) -> Image.Image:
    top, bottom = np.array(_colour(rng)), np.array(_colour(rng))
    ramp = np.linspace(0.0, 1.0, SIZE)[:, None, None]
    image = Image.fromarray(((1 - ramp) * top + ramp * bottom).repeat(SIZE, axis=1).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(2, 7)):  # clutter, so the figure is not the only edge in view
        x0, y0 = rng.integers(-40, SIZE, size=2)
        w, h = rng.integers(20, 90, size=2)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((int(x0), int(y0), int(x0 + w), int(y0 + h)), fill=_colour(rng))
    return image


def _pointy_ears(draw: ImageDraw.ImageDraw, c: float, r: float, colour: tuple) -> None:
    for side in (-1, 1):  # triangles standing above the head, pink inside
        outer, inner = (c + side * 0.85 * r, c - 0.45 * r), (c + side * 0.15 * r, c - 0.95 * r)
        draw.polygon([outer, (c + side * 0.75 * r, c - 1.55 * r), inner], fill=colour)
        pink = [
            (c + side * 0.72 * r, c - 0.6 * r),
            (c + side * 0.7 * r, c - 1.3 * r),
            (c + side * 0.3 * r, c - 0.9 * r),
        ]
        draw.polygon(pink, fill=(235, 150, 170))


def _floppy_ears(draw: ImageDraw.ImageDraw, c: float, r: float, colour: tuple) -> None:
    for side in (-1, 1):  # long rounded ears hanging down beside the head
        x = c + side * 0.9 * r
        draw.ellipse((x - 0.3 * r, c - 0.7 * r, x + 0.3 * r, c + 0.95 * r), fill=colour)


def _eyes(draw: ImageDraw.ImageDraw, rng: np.random.Generator, c: float, r: float, slit: bool) -> None:
    y, radius = c - 0.2 * r, 0.13 * r
    pupil = (0.18 if slit else 0.5) * radius
    for side in (-1, 1):
        x = c + side * 0.38 * r
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=_colour(rng, 120, 256))
        draw.ellipse((x - pupil, y - 0.8 * radius, x + pupil, y + 0.8 * radius), fill=(10, 10, 10))


def _whiskers(draw: ImageDraw.ImageDraw, rng: np.random.Generator, c: float, r: float) -> None:
    nose = [(c - 0.1 * r, c + 0.1 * r), (c + 0.1 * r, c + 0.1 * r), (c, c + 0.22 * r)]
    draw.polygon(nose, fill=(235, 130, 150))
    for side in (-1, 1):
        for dy in (-0.16, 0.1, 0.36):
            end = (c + side * 1.25 * r, c + (0.2 + dy) * r)
            draw.line(
                (c + side * 0.15 * r, c + 0.2 * r, *end), fill=_colour(rng), width=max(1, int(0.025 * r))
            )


def _snout(draw: ImageDraw.ImageDraw, rng: np.random.Generator, c: float, r: float) -> None:
    black = (15, 15, 15)
    draw.ellipse((c - 0.42 * r, c + 0.05 * r, c + 0.42 * r, c + 0.7 * r), fill=(225, 205, 180))
    draw.ellipse((c - 0.2 * r, c + 0.08 * r, c + 0.2 * r, c + 0.32 * r), fill=black)  # the big nose
    draw.line((c, c + 0.32 * r, c, c + 0.55 * r), fill=black, width=max(1, int(0.04 * r)))
    if rng.random() < 0.5:  # tongue out
        draw.ellipse((c - 0.12 * r, c + 0.5 * r, c + 0.12 * r, c + 0.85 * r), fill=(230, 90, 110))


def _draw_face(draw: ImageDraw.ImageDraw, rng: np.random.Generator, is_dog: bool, c: float, r: float) -> None:
    """A head of radius r centred at (c, c): the class shows in the ears, pupils and muzzle only."""
    fur, dark = _colour(rng, 40, 256), _colour(rng, 0, 90)
    if is_dog:
        _floppy_ears(draw, c, r, dark)
    else:
        _pointy_ears(draw, c, r, fur)
    draw.ellipse((c - r, c - 0.9 * r, c + r, c + 0.9 * r), fill=fur)
    _eyes(draw, rng, c, r, slit=not is_dog)
    (_snout if is_dog else _whiskers)(draw, rng, c, r)


def draw_animal(label: int, seed: int, index: int) -> Image.Image:
    """One picture of class `label` (0 cat, 1 dog); a pure function of its arguments."""
    rng = np.random.default_rng([seed, label, index])
    return _compose(rng, lambda draw, c, r: _draw_face(draw, rng, label == 1, c, r))


def _car(draw: ImageDraw.ImageDraw, rng: np.random.Generator, c: float, r: float) -> None:
    body, glass = _colour(rng, 30, 256), (170, 200, 230)
    draw.rectangle((c - 1.3 * r, c - 0.1 * r, c + 1.3 * r, c + 0.45 * r), fill=body)
    draw.polygon(
        [
            (c - 0.8 * r, c - 0.1 * r),
            (c - 0.5 * r, c - 0.6 * r),
            (c + 0.5 * r, c - 0.6 * r),
            (c + 0.9 * r, c - 0.1 * r),
        ],
        fill=body,
    )
    draw.rectangle((c - 0.45 * r, c - 0.5 * r, c - 0.05 * r, c - 0.12 * r), fill=glass)
    draw.rectangle((c + 0.05 * r, c - 0.5 * r, c + 0.55 * r, c - 0.12 * r), fill=glass)
    for x in (c - 0.75 * r, c + 0.75 * r):  # wheels with hubcaps
        draw.ellipse((x - 0.32 * r, c + 0.2 * r, x + 0.32 * r, c + 0.84 * r), fill=(20, 20, 20))
        draw.ellipse((x - 0.13 * r, c + 0.39 * r, x + 0.13 * r, c + 0.65 * r), fill=(190, 190, 190))


def _house(draw: ImageDraw.ImageDraw, rng: np.random.Generator, c: float, r: float) -> None:
    draw.rectangle((c - r, c - 0.2 * r, c + r, c + r), fill=_colour(rng, 60, 256))
    draw.polygon(
        [(c - 1.2 * r, c - 0.2 * r), (c, c - 1.2 * r), (c + 1.2 * r, c - 0.2 * r)], fill=_colour(rng, 0, 160)
    )
    draw.rectangle((c - 0.2 * r, c + 0.35 * r, c + 0.2 * r, c + r), fill=_colour(rng, 0, 120))  # the door
    for x in (c - 0.65 * r, c + 0.35 * r):  # square windows with a cross
        draw.rectangle((x, c + 0.05 * r, x + 0.3 * r, c + 0.35 * r), fill=(200, 225, 250))
        draw.line((x + 0.15 * r, c + 0.05 * r, x + 0.15 * r, c + 0.35 * r), fill=(60, 60, 60), width=2)


def _fruit(draw: ImageDraw.ImageDraw, rng: np.random.Generator, c: float, r: float) -> None:
    for _ in range(int(rng.integers(1, 4))):  # one to three round fruits with a stalk and a leaf
        x, y = c + rng.uniform(-0.6, 0.6) * r, c + rng.uniform(-0.3, 0.5) * r
        size = rng.uniform(0.45, 0.7) * r
        draw.ellipse((x - size, y - size, x + size, y + size), fill=_colour(rng, 80, 256))
        draw.line((x, y - size, x + 0.1 * size, y - 1.4 * size), fill=(90, 60, 20), width=3)
        draw.ellipse((x + 0.1 * size, y - 1.5 * size, x + 0.7 * size, y - 1.15 * size), fill=(40, 150, 40))


def _tree(draw: ImageDraw.ImageDraw, rng: np.random.Generator, c: float, r: float) -> None:
    draw.rectangle((c - 0.15 * r, c + 0.1 * r, c + 0.15 * r, c + 1.2 * r), fill=(100, 65, 30))
    green = (int(rng.integers(20, 90)), int(rng.integers(110, 200)), int(rng.integers(20, 90)))
    if rng.random() < 0.5:  # a fir: stacked triangles
        for k in range(3):
            top, base = c - (1.2 - 0.4 * k) * r, c + (0.0 + 0.35 * k) * r
            draw.polygon(
                [(c, top), (c - (0.5 + 0.2 * k) * r, base), (c + (0.5 + 0.2 * k) * r, base)], fill=green
            )
    else:  # a leafy crown of overlapping discs
        for dx, dy in ((-0.45, -0.3), (0.45, -0.3), (0.0, -0.75), (0.0, -0.1)):
            x, y = c + dx * r, c + dy * r
            draw.ellipse((x - 0.5 * r, y - 0.5 * r, x + 0.5 * r, y + 0.5 * r), fill=green)


# What the non-pet pictures show, drawn in turn: shapes with none of the faces' ears, eyes or fur.
THINGS = {"car": _car, "house": _house, "fruit": _fruit, "tree": _tree}


def _compose(rng: np.random.Generator, paint) -> Image.Image:
    """Background, a figure painted by `paint(draw, c, r)` at a random place, size and tilt, noise."""
    image = _background(rng)
    r = float(rng.uniform(0.16, 0.27)) * SIZE
    side = int(4 * r)
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    paint(ImageDraw.Draw(layer), side / 2, r)
    layer = layer.rotate(float(rng.uniform(-20, 20)), resample=Image.Resampling.BILINEAR)
    x, y = (rng.uniform(0.3, 0.7, size=2) * SIZE - side / 2).astype(int)
    image.paste(layer, (int(x), int(y)), layer)
    noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, rng.uniform(2, 12), size=(SIZE, SIZE, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def draw_thing(index: int, seed: int) -> tuple[str, Image.Image]:
    """Non-pet picture `index`: (its kind, the picture); a pure function of its arguments."""
    kind = list(THINGS)[index % len(THINGS)]
    # Stream [seed, 2, index]: 0 and 1 are the cats' and dogs', so those never change.
    rng = np.random.default_rng([seed, len(CLASS_FOLDERS), index])
    return kind, _compose(rng, lambda draw, c, r: THINGS[kind](draw, rng, c, r))


def generate(out_dir: Path, params: SyntheticParams) -> int:
    """Write the dataset into out_dir (replacing an earlier synthetic one); returns the image count."""
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / SYNTHETIC_MARKER).is_file():
        raise ValueError(
            f"{out_dir} is not empty and has no {SYNTHETIC_MARKER} marker; refusing to overwrite it"
        )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    for label, folder in enumerate(CLASS_FOLDERS):
        class_dir = out_dir / "train" / folder
        class_dir.mkdir(parents=True)
        for index in range(params.per_class):
            path = class_dir / f"synthetic_{folder[:-1]}_{index:04d}.jpg"
            draw_animal(label, params.seed, index).save(path, quality=90)
    (out_dir / NEITHER_FOLDER).mkdir()  # even when empty: prepare.neither_dir names it
    for index in range(params.neither):
        kind, picture = draw_thing(index, params.seed)
        path = out_dir / NEITHER_FOLDER / kind / f"synthetic_{kind}_{index:04d}.jpg"
        path.parent.mkdir(exist_ok=True)
        picture.save(path, quality=90)
    readme = README.format(seed=params.seed, per_class=params.per_class, neither=params.neither)
    (out_dir / "README.txt").write_text(readme)
    (out_dir / SYNTHETIC_MARKER).write_text("Generated by training/synthetic.py; see README.txt.\n")
    return params.per_class * len(CLASS_FOLDERS) + params.neither


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, required=True, help="folder to (re)generate")
    parser.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="reads its synthetic: section"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.perf_counter()
    try:
        params = load_section(args.params, "synthetic", SyntheticParams)
        count = generate(args.out_dir, params)
    except (ValueError, yaml.YAMLError, OSError) as e:
        print(f"synthetic: error: {e}", file=sys.stderr)
        return 1
    logger.info(
        "synthetic: wrote %d SYNTHETIC images (%d per class, %d non-pets, seed %d) to %s in %.1f s",
        count,
        params.per_class,
        params.neither,
        params.seed,
        args.out_dir,
        time.perf_counter() - started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
