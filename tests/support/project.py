"""The checkout's folders, as the tests see them."""

from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
DATA_DIR = PROJECT_DIR / "tests" / "data"  # reference values the tests hold the code to
