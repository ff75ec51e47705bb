"""Generated audio: tones with numpy, any format with ffmpeg's own generator."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np


def tone(freq: float = 440.0, seconds: float = 1.0, sr: int = 22050, channels: int = 1, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    y = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return y if channels == 1 else np.column_stack([y] * channels)


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
