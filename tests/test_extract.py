"""Extraction over many files: the process pool, quarantine, and the standalone command."""

from __future__ import annotations

import pandas as pd
import soundfile as sf

from conftest import tone
from musicrec import cli, discover, extract, features


def _library(root):
    (root / "a").mkdir(parents=True)
    for i, freq in enumerate([220, 440, 880]):
        sf.write(root / "a" / f"t{i}.wav", tone(freq, 1.0), 22050)
    (root / "a" / "broken.mp3").write_bytes(b"\x00\xff" * 500)
    (root / "a" / "empty.ogg").write_bytes(b"")
    return root


def test_pool_extracts_good_files_and_quarantines_bad_ones(tmp_path):
    lib = _library(tmp_path / "lib")
    worklist = discover.scan(lib).files
    feats, quarantine = extract.extract(lib, worklist, workers=2)
    assert sorted(feats["track_key"]) == ["a/t0.wav", "a/t1.wav", "a/t2.wav"]
    assert sorted(quarantine["track_key"]) == ["a/broken.mp3", "a/empty.ogg"]
    assert quarantine.set_index("track_key").loc["a/empty.ogg", "error"] == "empty file (0 bytes)"
    assert list(feats.columns[:4]) == ["track_key", "folder", "file", "duration_s"]
    assert (feats["feature_version"] == features.FEATURE_VERSION).all()
    # One process gives the same numbers as the pool (up to BLAS threading's rounding).
    single, _ = extract.extract(lib, worklist, workers=1)
    pd.testing.assert_frame_equal(
        feats.sort_values("track_key", ignore_index=True),
        single.sort_values("track_key", ignore_index=True),
        rtol=1e-4,
        atol=1e-4,
    )


def test_a_file_removed_during_the_run_is_quarantined(tmp_path):
    lib = _library(tmp_path / "lib")
    worklist = discover.scan(lib).files
    (lib / "a" / "t1.wav").unlink()
    feats, quarantine = extract.extract(lib, worklist, workers=1)
    assert "a/t1.wav" in set(quarantine["track_key"]) and len(feats) == 2


def test_features_command_uses_the_same_extraction(tmp_path, capsys):
    lib = _library(tmp_path / "lib")
    out = tmp_path / "out" / "features.parquet"
    assert cli.main(["features", "--library", str(lib), "--out", str(out), "--workers", "1"]) == 0
    written = pd.read_parquet(out)
    expected, _ = extract.extract(lib, discover.scan(lib).files, workers=1)
    pd.testing.assert_frame_equal(written, expected)
    assert len(pd.read_parquet(out.with_name("features.quarantine.parquet"))) == 2
    assert "3 files" in capsys.readouterr().out
