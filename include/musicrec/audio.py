"""Decoding audio files to mono float32 at the analysis rate.

Two decoders, each the other's fallback, so a file is unreadable only when both fail:
- libsndfile (`soundfile`), first for the formats it reads itself (wav, flac, ogg, opus, mp3,
  aiff): read in blocks, downmixed and resampled with soxr as a stream, so no full-rate copy
  of the track is held. Some real Ogg files that ffmpeg rejects ("Header processing failed")
  read fine here.
- ffmpeg, first for everything else (m4a/aac, ...), decoding straight to mono float32 at the
  target rate through a pipe.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger("musicrec")

AUDIO_EXTENSIONS = frozenset({".mp3", ".ogg", ".oga", ".opus", ".flac", ".wav", ".m4a", ".aac", ".aif", ".aiff"})

SOUNDFILE_BLOCK_FRAMES = 1 << 16
READ_CHUNK_BYTES = 1 << 20
# No file takes longer to decode than this (a 30-minute cap decodes in seconds): a hung decoder is stopped.
FFMPEG_TIMEOUT_S = 600
# Formats libsndfile decodes itself, faster than an ffmpeg process (no pipe, no process start-up);
# the rest go to ffmpeg first. Either way the other decoder is the fallback.
SOUNDFILE_FIRST = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff"})


class DecodeError(Exception):
    """No decoder could read the file; the message says what each one reported."""


@functools.cache
def ffmpeg_executable() -> str:
    """ffmpeg on PATH if there, otherwise the binary that the imageio-ffmpeg wheel ships."""
    explicit = os.environ.get("MUSICREC_FFMPEG")
    if explicit:
        return explicit
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def is_audio_file(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS


def decode_ffmpeg(path: Path, sr: int, max_seconds: float | None = None) -> np.ndarray:
    limit = ["-t", f"{max_seconds:.3f}"] if max_seconds else []
    cmd = [
        ffmpeg_executable(),
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-i",
        str(path),
        *limit,
        "-vn",
        "-map",
        "0:a:0",
        "-ac",
        "1",
        "-ar",
        str(sr),
        "-f",
        "f32le",
        "pipe:1",
    ]
    # stderr goes to a file, so a chatty decoder can never block the pipe we read.
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        watchdog = threading.Timer(FFMPEG_TIMEOUT_S, proc.kill)
        watchdog.start()
        # One growing buffer (realloc'd in place), not a list of chunks joined at the end: half the peak memory.
        buf = bytearray()
        while chunk := proc.stdout.read(READ_CHUNK_BYTES):
            buf += chunk
        proc.stdout.close()
        returncode = proc.wait()
        timed_out = not watchdog.is_alive() and returncode < 0
        watchdog.cancel()
        err.seek(0)
        message = err.read()[-4000:].decode("utf-8", "replace").strip().splitlines()
    if timed_out:
        raise DecodeError(f"ffmpeg: still decoding after {FFMPEG_TIMEOUT_S} s, stopped")
    if returncode != 0:
        raise DecodeError(f"ffmpeg: {message[-1] if message else f'exit code {returncode}'}")
    del buf[len(buf) - len(buf) % 4 :]
    if not buf:
        raise DecodeError("ffmpeg: no audio samples decoded")
    return np.frombuffer(buf, dtype="<f4")


@contextlib.contextmanager
def _native_stderr_to_debug_log():
    """Libraries' own lines on the process's stderr (mpg123's "Note: Illegal Audio-MPEG-Header", "warning:
    Cannot read next header") go to the debug log: the decode error, if any, already says what failed."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            said = sink.read(4000).decode("utf-8", "replace").strip()
    if said:
        log.debug("decoder said: %s", said)


def decode_soundfile(path: Path, sr: int, max_seconds: float | None = None) -> np.ndarray:
    import soundfile as sf
    import soxr

    try:
        with _native_stderr_to_debug_log(), sf.SoundFile(str(path)) as f:
            resampler = (
                None if f.samplerate == sr else soxr.ResampleStream(f.samplerate, sr, 1, dtype="float32", quality="HQ")
            )
            # Written in place into one array sized from the header: no list of pieces joined at the end,
            # which would hold the track twice. (Some headers under-count: then it grows.)
            wanted = int(f.frames * sr / f.samplerate) + 1024 if f.frames > 0 else 1 << 20
            limit = int(max_seconds * sr) if max_seconds else None
            out = np.empty(min(wanted, limit) if limit else wanted, dtype=np.float32)
            filled = 0
            # Downmix as a matrix-vector product: a mean over the short channel axis is several times slower.
            downmix = np.full(f.channels, 1.0 / f.channels, dtype=np.float32)
            for block in f.blocks(blocksize=SOUNDFILE_BLOCK_FRAMES, dtype="float32", always_2d=True):
                mono = block @ downmix
                out, filled = _append(out, filled, mono if resampler is None else resampler.resample_chunk(mono))
                if limit and filled >= limit:
                    return out[:limit]
            if resampler is not None:
                tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
                out, filled = _append(out, filled, tail)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise DecodeError(f"soundfile: {str(exc).replace(f'Error opening {str(path)!r}: ', '')}") from exc
    if filled == 0:
        raise DecodeError("soundfile: no audio samples decoded")
    return out[:filled]


def _append(out: np.ndarray, filled: int, piece: np.ndarray) -> tuple[np.ndarray, int]:
    if filled + piece.size > out.size:
        out = np.resize(out, max(2 * out.size, filled + piece.size))
    out[filled : filled + piece.size] = piece
    return out, filled + piece.size


def decode(path: Path, sr: int, max_seconds: float | None = None) -> np.ndarray:
    """Mono float32 samples at `sr`, from the first decoder that reads the file: its first `max_seconds` only,
    when given, so that memory stays bounded whatever the file's length."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DecodeError(f"file not found: {path}") from None
    if not stat.S_ISREG(info.st_mode):
        raise DecodeError("not a regular file (a FIFO, device or folder): nothing to decode")
    if info.st_size == 0:
        raise DecodeError("empty file (0 bytes)")
    errors = {}
    first_choice = decode_soundfile if path.suffix.lower() in SOUNDFILE_FIRST else decode_ffmpeg
    for decoder in (first_choice, decode_ffmpeg if first_choice is decode_soundfile else decode_soundfile):
        try:
            y = decoder(path, sr, max_seconds)
        except DecodeError as exc:
            errors[decoder.__name__.removeprefix("decode_")] = str(exc).split(": ", 1)[-1]
            continue
        if not np.isfinite(y).all():
            np.nan_to_num(y, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        return y
    raise DecodeError(_unreadable(errors))


def _unreadable(errors: dict[str, str]) -> str:
    """One reason a person understands, with each decoder's own words after it.

    libsndfile says "does not exist or is not a regular file (possibly a pipe?)" of any regular file whose
    contents it does not recognise: that is reported as what it means.
    """
    said = dict(errors)
    if "possibly a pipe" in said.get("soundfile", ""):
        said["soundfile"] = "format not recognised"
    detail = "; ".join(f"{name}: {message}" for name, message in said.items())
    return f"not readable as audio (damaged, or not the format its name says) ({detail})"


def peak_normalize(y: np.ndarray) -> tuple[np.ndarray, float]:
    """Scale to a peak of 1.0, in place; silence is left as it is. Returns the signal and its original peak."""
    peak = float(max(y.max(), -y.min())) if y.size else 0.0  # no |y| temporary the size of the track
    if peak > 1e-9:
        y *= np.float32(1.0 / peak)
    return y, peak


def duration_s(path: Path) -> float | None:
    """The file's length from its header (libsndfile, else mutagen), without decoding it; None if unknown."""
    import soundfile as sf

    try:
        return float(sf.info(str(path)).duration)
    except Exception:  # noqa: BLE001 - not a format libsndfile reads: ask mutagen
        pass
    try:
        import mutagen

        tagged = mutagen.File(str(path))
        return float(tagged.info.length) if tagged is not None and tagged.info.length else None
    except Exception:  # noqa: BLE001 - no length in the header: unknown
        return None
