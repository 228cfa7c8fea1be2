"""Package a freshly initialised, seeded CatsDogsNet as a .mar, with the same code as `make package`.

    python scripts/untrained_archive.py build/ci/catsdogs.mar [--version 0.0-untrained]

For testing the container without training first (`.ci/run` runs `make image-test` with it when no
models/catsdogs.mar exists): the archive, handler and server are the real ones; its predictions mean
nothing, and its version says so.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script from any directory


def main(argv: list[str] | None = None) -> int:
    import torch

    from serving.package import build_archive
    from training.model import CatsDogsNet

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where to write the .mar")
    parser.add_argument("--version", default="0.0-untrained", help="archive version (default: 0.0-untrained)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as model_dir:
        torch.manual_seed(0)
        torch.save(CatsDogsNet().eval().state_dict(), Path(model_dir) / "model.pt")
        (Path(model_dir) / "index_to_name.json").write_text(json.dumps({"0": "cat", "1": "dog"}))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        build_archive(Path(model_dir), args.version, args.out)
    print(f"wrote {args.out} (untrained catsdogs, version {args.version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
