"""Post-deployment monitoring: labelled batches against a live endpoint, drift, load and fault tests."""

from pathlib import Path

OUT_DIR = Path("run/monitoring")  # where `make collect` and `make drift` write (run/ is git-ignored)
