"""Smoke test of a served catsdogs model (CD runs this against kind): see serving/smoke.py.

python scripts/smoke_test.py http://127.0.0.1:30080 [--timeout 180] [--images DIR | --cat IMG --dog IMG]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script from any directory

from serving.smoke import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
