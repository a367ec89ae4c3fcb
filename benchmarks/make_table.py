"""Wrapper kept for the commands in the README: the code lives in ``flash_attention.tables``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from flash_attention.tables import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
