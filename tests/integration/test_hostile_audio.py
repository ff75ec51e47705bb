"""A corpus of generated hostile audio through `musicrec features`, as a user runs it (the console script):
every channel count 1-16, header sample rates from 1 Hz to 4 GHz, truncated and bit-flipped streams of every
format, and tag bombs. The whole command is bounded in time and memory; every file ends up analysed or
quarantined with a reason, and none takes the command down."""

from __future__ import annotations

import random
import resource
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from support.audio import ffmpeg_generate

FORMATS = ["wav", "flac", "mp3", "ogg", "opus", "m4a"]
RATES = [1, 7, 100, 1000, 44100, 192000, 384000, 768000, 2**32 - 1]
PEAK_MB = 3000  # any one process of the command (workers are held to warm size + 2 GB each)
WALL_S = 600


def _noise(seconds: float, rate: int, channels: int) -> np.ndarray:
    return (np.random.default_rng(channels).standard_normal((int(seconds * rate), channels)) * 0.1).astype("float32")


def _with_rate(wav: bytes, rate: int) -> bytes:
    """A WAV whose header claims `rate` (and the byte rate that goes with it) for the same samples."""
    channels, bits = struct.unpack_from("<H", wav, 22)[0], struct.unpack_from("<H", wav, 34)[0]
    byte_rate = min(rate * channels * bits // 8, 2**32 - 1)
    return wav[:24] + struct.pack("<II", rate, byte_rate) + wav[32:]


def _flipped(data: bytes, seed: int, share: float = 0.01) -> bytes:
    """`data` with about `share` of its bytes past the first 64 given a random bit flip."""
    rng = random.Random(seed)
    out = bytearray(data)
    for at in rng.sample(range(64, len(out)), max(1, int(share * (len(out) - 64)))):
        out[at] ^= 1 << rng.randrange(8)
    return bytes(out)


def _tag_bomb_mp3(path: Path, frames: int) -> None:
    from mutagen.id3 import ID3, TXXX

    ffmpeg_generate(path, seconds=1.0, channels=1)
    tags = ID3()
    for i in range(frames):
        tags.add(TXXX(desc=f"d{i}", text=["x"]))
    tags.save(path)


def make_hostile_corpus(root: Path) -> int:
    """Writes the corpus under `root`; returns how many files it holds."""
    (root / "channels").mkdir(parents=True)
    for channels in range(1, 17):
        sf.write(root / "channels" / f"{channels:02d}ch.wav", _noise(1.0, 8000, channels), 8000)
    for channels in (1, 2, 6, 8):
        sf.write(root / "channels" / f"{channels:02d}ch.flac", _noise(1.0, 8000, channels), 8000)
    for fmt in ("m4a", "ogg", "opus"):
        ffmpeg_generate(root / "channels" / f"08ch.{fmt}", seconds=1.0, sr=48000, channels=8)
    (root / "rates").mkdir()
    sf.write(root / "rates" / "base.wav", _noise(1.0, 8000, 1), 8000, subtype="PCM_16")
    base = (root / "rates" / "base.wav").read_bytes()
    for rate in RATES:
        (root / "rates" / f"{rate}hz.wav").write_bytes(_with_rate(base, rate))
    (root / "damaged").mkdir()
    for fmt in FORMATS:
        good = ffmpeg_generate(root / "damaged" / f"whole.{fmt}", seconds=3.0, channels=2).read_bytes()
        for share in (0.1, 0.5):
            (root / "damaged" / f"cut-{int(share * 100)}pct.{fmt}").write_bytes(good[: int(len(good) * share)])
        (root / "damaged" / f"header-only.{fmt}").write_bytes(good[:64])
        for seed in (1, 2):
            (root / "damaged" / f"flipped-{seed}.{fmt}").write_bytes(_flipped(good, seed))
    (root / "tags").mkdir()
    _tag_bomb_mp3(root / "tags" / "20000-id3-frames.mp3", 20_000)
    flac = root / "tags" / "huge-comment.flac"
    sf.write(flac, _noise(1.0, 8000, 1), 8000)
    from mutagen.flac import FLAC

    tagged = FLAC(flac)
    tagged["title"] = "x" * (8 << 20)  # an 8 MB comment
    tagged.save()
    return sum(1 for p in root.rglob("*") if p.is_file())


def test_hostile_audio_through_musicrec_features_is_bounded_and_each_file_is_accounted_for(tmp_path):
    library = tmp_path / "hostile"
    count = make_hostile_corpus(library)
    out = tmp_path / "features.parquet"
    musicrec = str(Path(sys.executable).with_name("musicrec"))
    started = time.monotonic()
    done = subprocess.run(
        [musicrec, "features", "--library", str(library), "--out", str(out), "--file-time-limit", "60"],
        capture_output=True,
        text=True,
        timeout=WALL_S,
    )
    wall = time.monotonic() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"hostile corpus: {count} files in {wall:.0f} s, peak {peak_mb:.0f} MB in one process")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    features = pd.read_parquet(out)
    quarantine = pd.read_parquet(out.with_name("features.quarantine.parquet"))
    assert len(features) + len(quarantine) == count
    assert quarantine["error"].str.len().gt(0).all()
    analysed = set(features["track_key"])
    assert {f"channels/{c:02d}ch.wav" for c in range(1, 17)} <= analysed  # any channel count is audio
    assert {"rates/base.wav", "rates/44100hz.wav", "damaged/whole.wav", "tags/huge-comment.flac"} <= analysed
    refused = dict(zip(quarantine["track_key"], quarantine["error"], strict=True))
    assert "rates/1hz.wav" in refused and "rates/4294967295hz.wav" in refused
    assert peak_mb < PEAK_MB and wall < WALL_S
