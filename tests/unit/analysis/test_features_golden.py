"""The feature values of a fixed generated signal, decoded and analysed, for the current FEATURE_VERSION.

A change of values (decoding, resampling, analysis, settings, network, weights) must come with a new version,
or a deployed library would mix old and new features in one index; a cosmetic edit must not change the version
(a library would be extracted again for nothing). So: same version, same values (within TOLERANCE, for CPUs that
round differently: AVX2 or AVX-512); a new version, new values written with

    PYTHONPATH=tests .venv/bin/python tests/unit/analysis/test_features_golden.py --write
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from musicrec.analysis import features
from support.project import DATA_DIR

GOLDEN = DATA_DIR / "golden_features.json"
TOLERANCE = {"rtol": 2e-3, "atol": 2e-4}
RATE = 44100


def fixed_signal(seconds: float = 12.0) -> np.ndarray:
    """Stereo, 44.1 kHz: a chord that changes every 3 s, clicks at 120 beats a minute, and seeded noise."""
    t = np.arange(int(seconds * RATE)) / RATE
    chord = sum(np.sin(2 * np.pi * f * (1 + 0.25 * (t // 3)) * t) for f in (220.0, 277.2, 329.6)) / 6
    clicks = np.where((t % 0.5) < 0.01, np.sin(2 * np.pi * 2000 * t), 0.0) * 0.5
    noise = np.random.default_rng(7).standard_normal(t.size) * 0.02
    left = chord + clicks + noise
    return np.column_stack([left, 0.8 * left]).astype(np.float32)


def analysed(folder: Path) -> dict[str, float]:
    path = folder / "fixed.flac"
    sf.write(path, fixed_signal(), RATE, subtype="PCM_16")  # lossless: the decoders see the same samples
    row = features.extract_path(path)
    values = {k: float(v) for k, v in row.items() if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)}
    sub_fingerprints = np.frombuffer(row[features.FINGERPRINT], dtype="<u4")
    return values | {"fingerprint_bits_set": float(np.bitwise_count(sub_fingerprints).sum())}


def test_the_same_version_gives_the_same_values(tmp_path):
    golden = json.loads(GOLDEN.read_text())
    assert golden["feature_version"] == features.FEATURE_VERSION, (
        f"FEATURE_VERSION is {features.FEATURE_VERSION}, the golden values are for {golden['feature_version']}: "
        "write them for the new version (see this module's docstring)"
    )
    values = analysed(tmp_path)
    assert set(values) == set(golden["values"])
    names = sorted(values)
    changed = [
        f"{n}: {golden['values'][n]:.6g} -> {values[n]:.6g}"
        for n in names
        if not np.isclose(values[n], golden["values"][n], **TOLERANCE)
    ]
    assert not changed, f"{len(changed)} feature values changed without a new FEATURE_VERSION: " + "; ".join(
        changed[:10]
    )


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        values = analysed(Path(folder))
    GOLDEN.write_text(json.dumps({"feature_version": features.FEATURE_VERSION, "values": values}, indent=1) + "\n")
    print(f"{len(values)} values for {features.FEATURE_VERSION} -> {GOLDEN}")


def test_a_docstring_edited_in_the_analysis_code_keeps_the_version(tmp_path):
    """The analysis modules with an edited docstring give the same FEATURE_VERSION: nothing is extracted again."""
    import shutil
    import subprocess

    package = Path(features.__file__).parents[1]
    copy = shutil.copytree(package, tmp_path / "musicrec", ignore=shutil.ignore_patterns("__pycache__"))
    for module in ("features.py", "musicnn.py", "audio.py"):
        text = (copy / "analysis" / module).read_text()
        (copy / "analysis" / module).write_text(text.replace('"""', '"""Edited. ', 1))
    code = "from musicrec.analysis import features; print(features.FEATURE_VERSION, features.__file__)"
    done = subprocess.run(
        [sys.executable, "-c", code], env={"PYTHONPATH": str(tmp_path)}, capture_output=True, text=True, timeout=120
    )
    version, where = done.stdout.split()
    assert where == str(copy / "analysis" / "features.py") and version == features.FEATURE_VERSION
