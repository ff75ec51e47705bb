"""Generated audio: tones and random notes with numpy, any format with ffmpeg's own generator, lossy
encodings through ffmpeg's encoders (PyAV)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np


def tone(freq: float = 440.0, seconds: float = 1.0, sr: int = 22050, channels: int = 1, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    y = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return y if channels == 1 else np.column_stack([y] * channels)


def notes(seconds: float = 30.0, seed: int = 0, sr: int = 22050) -> np.ndarray:
    """Notes of random pitch and length (a decaying tone with two harmonics) over a noise floor: a signal
    with structure in time and frequency, another piece for each seed."""
    rng = np.random.default_rng(seed)
    y = 0.02 * rng.standard_normal(int(seconds * sr))
    start = 0
    while start < y.size:
        t = np.arange(min(int(rng.uniform(0.1, 0.5) * sr), y.size - start)) / sr
        f = 110 * 2 ** (rng.integers(0, 36) / 12)
        y[start : start + t.size] += sum(0.3 / h * np.sin(2 * np.pi * f * h * t) for h in (1, 2, 3)) * np.exp(-3 * t)
        start += t.size
    return y


def encode(y: np.ndarray, path: Path, codec: str, fmt: str, rate: int, bitrate: int) -> Path:
    """A mono signal at `rate` encoded by one of ffmpeg's encoders (through PyAV), e.g. ("libmp3lame", "mp3"),
    ("libopus", "ogg") at 48 kHz, ("aac", "adts")."""
    import io

    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.bit_rate = bitrate
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(y[np.newaxis].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    path.write_bytes(buffer.getvalue())
    return path


def ffmpeg_executable() -> str:
    """The ffmpeg command: on PATH if there, otherwise the binary that the imageio-ffmpeg wheel ships."""
    import shutil

    import imageio_ffmpeg

    return shutil.which("ffmpeg") or imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_generate(
    path: Path, seconds: float = 1.0, sr: int = 44100, channels: int = 2, extra: list[str] = ()
) -> Path:
    """A sine test file made by ffmpeg's own generator, in whatever format the extension says."""
    layout = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}[channels]
    cmd = [
        ffmpeg_executable(),
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=440:sample_rate={sr}:duration={seconds}",
        "-af",
        f"aformat=channel_layouts={layout}",
        *extra,
        str(path),
    ]
    subprocess.run(cmd, check=True)
    return path
