"""Decoding audio files to mono float32 at the analysis rate.

Two decoders, each the other's fallback, so a file is unreadable only when both fail:
- ffmpeg's libavcodec in this process (PyAV), first for every format: its decoders are the fastest
  here (Vorbis about twice as fast as libvorbis), and it reads what libsndfile does not (m4a/aac, ...).
- libsndfile (`soundfile`): some real Ogg files that ffmpeg rejects ("Header processing failed")
  read fine here.
Both downmix and resample (soxr) as the samples come, so no full-rate copy of the track is held.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import stat
import sys
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger("musicrec")

AUDIO_EXTENSIONS = frozenset({".mp3", ".ogg", ".oga", ".opus", ".flac", ".wav", ".m4a", ".aac", ".aif", ".aiff"})

SOUNDFILE_BLOCK_FRAMES = 1 << 16
# Beyond this many packets the decoder rejects, the file is not audio with a few damaged stretches.
MAX_DAMAGED_PACKETS = 100
# What audio files use. A header outside these is a damaged or hostile file, refused before anything is
# allocated from it: a 32 KB WAV declaring 1 Hz asked soxr for 65,536 x 22,050 samples at once (5 GB), and a
# WAV may declare 65,535 channels.
MIN_RATE, MAX_RATE = 1_000, 768_000
MAX_CHANNELS = 64
# The output is allocated for the length the header says, up to this many seconds; longer, it grows as
# samples come (a header may claim any length).
MAX_PREALLOCATED_S = 1800.0


class DecodeError(Exception):
    """No decoder could read the file; the message says what each one reported."""


def is_audio_file(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS


def decode_ffmpeg(path: Path, sr: int, max_seconds: float | None = None) -> np.ndarray:
    """libavcodec in this process (PyAV): frames downmixed and resampled (soxr) as a stream.

    A packet the decoder rejects is skipped, as the ffmpeg command does, so a damaged stretch costs only
    itself; a file with no decodable audio at all is a DecodeError.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise DecodeError("ffmpeg: no audio stream")
            stream = container.streams.audio[0]
            seconds = float(container.duration / av.time_base) if container.duration else None
            out = _MonoStream(sr, seconds, max_seconds)
            while True:
                try:
                    out.take(container.decode(stream))  # to the end or the limit
                    break
                except av.error.InvalidDataError:
                    # Decoding goes on from the next packet: the container keeps its place.
                    out.skipped += 1
                    if out.skipped > MAX_DAMAGED_PACKETS:
                        raise
            return out.finish()
    except av.error.FFmpegError as exc:
        raise DecodeError(f"ffmpeg: {exc.strerror or exc}") from exc


class _MonoStream:
    """Decoded frames to one mono float32 signal at `sr`.

    Frames wait in a buffer of the source rate (a row per channel) and go to the downmix and the output
    (`_MonoOut`) in pieces of PENDING_SAMPLES: per-frame calls would cost more than the resampling.
    """

    PENDING_SAMPLES = 1 << 16

    def __init__(self, sr: int, seconds: float | None, max_seconds: float | None):
        self.sr, self.seconds, self.max_seconds = sr, seconds, max_seconds
        self.out: _MonoOut | None = None  # made when the first frame tells the source rate
        self.pending = np.empty((0, 2 * self.PENDING_SAMPLES), dtype=np.float32)
        self.waiting = 0
        self.converter = None
        self.skipped = 0

    def take(self, frames) -> None:
        """Frames until they end or the limit is reached.

        The loop runs once per frame (about every 10 ms of audio), so it is kept to the least Python: each
        plane is copied as bytes into a byte view of its row, with no array made for it, and the state
        lives in local variables (`at`: bytes filled in each row).
        """
        frames = self._planar(frames)
        rows, at = self._byte_rows(), 4 * self.waiting
        flush_at = 4 * self.PENDING_SAMPLES
        try:
            for frame in frames:
                # PyAV 18 lists one plane more than a planar frame of 8 or more channels has; reading it
                # reads past libavcodec's pointers (SIGSEGV). A plane per channel is all there is.
                size, planes = 4 * frame.samples, frame.planes[: frame.layout.nb_channels]
                end = at + size
                if len(planes) != len(rows) or end > rows[0].nbytes:
                    self.waiting = at // 4
                    self._make_room(len(planes), frame.samples)
                    rows, at = self._byte_rows(), 4 * self.waiting
                    end = at + size
                for row, plane in zip(rows, planes, strict=True):
                    row[at:end] = memoryview(plane)[:size]
                at = end
                if at >= flush_at:
                    self.waiting, at = at // 4, 0
                    self._flush(last=False)
                    if self.out.full:
                        return
        finally:
            self.waiting = at // 4

    def _planar(self, frames):
        """The frames as planar float32: as they come when they are (most decoders' output), else converted."""
        frames = iter(frames)
        first = next(frames, None)
        if first is None:
            return iter(())
        if self.out is None:
            self._start(first)
        frames = itertools.chain([first], frames)
        if self.converter is None:
            return frames
        return (planar for frame in frames for planar in self.converter.resample(frame))

    def _byte_rows(self) -> list[memoryview]:
        return [memoryview(row).cast("B") for row in self.pending]

    def _start(self, frame) -> None:
        import av

        if frame.format.name != "fltp":
            # Integer, packed or double samples become planar float32 in libswresample, at the same rate.
            self.converter = av.AudioResampler(format="fltp", layout=frame.layout, rate=frame.sample_rate)
        self.out = _MonoOut(frame.sample_rate, frame.layout.nb_channels, self.sr, self.seconds, self.max_seconds)

    def _make_room(self, channels: int, n: int) -> None:
        if channels != self.pending.shape[0]:  # a chained stream can change its channel count
            check_shape(self.out.source_rate, channels)
            if self.waiting:
                self._flush(last=False)
            self.pending = np.empty((channels, max(2 * self.PENDING_SAMPLES, n)), dtype=np.float32)
        elif self.waiting + n > self.pending.shape[1]:
            self.pending = np.concatenate([self.pending, np.empty_like(self.pending)], axis=1)

    def _flush(self, last: bool) -> None:
        self.out.add(_downmix(self.pending.shape[0]) @ self.pending[:, : self.waiting], last=last)
        self.waiting = 0

    def finish(self) -> np.ndarray:
        if self.converter is not None:  # what libswresample still holds, already converted
            converter, self.converter = self.converter, None
            self.take(converter.resample(None))
        if self.out is not None:
            self._flush(last=True)
        if self.out is None or self.out.filled == 0:
            reason = f"{self.skipped} damaged packets, no audio decoded" if self.skipped else "no audio samples decoded"
            raise DecodeError(f"ffmpeg: {reason}")
        if self.skipped:
            log.debug("ffmpeg: %d damaged packets skipped", self.skipped)
        return self.out.signal()


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

    try:
        with _native_stderr_to_debug_log(), sf.SoundFile(str(path)) as f:
            seconds = f.frames / f.samplerate if f.frames > 0 else None
            out = _MonoOut(f.samplerate, f.channels, sr, seconds, max_seconds)
            downmix = _downmix(f.channels)
            for block in f.blocks(blocksize=SOUNDFILE_BLOCK_FRAMES, dtype="float32", always_2d=True):
                out.add(block @ downmix)
                if out.full:
                    break
            else:
                out.add(np.zeros(0, dtype=np.float32), last=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise DecodeError(f"soundfile: {str(exc).replace(f'Error opening {str(path)!r}: ', '')}") from exc
    if out.filled == 0:
        raise DecodeError("soundfile: no audio samples decoded")
    return out.signal()


class _MonoOut:
    """Mono pieces at the source rate to one float32 signal at `sr`: resampled with soxr as a stream, and
    written in place into one array sized from the expected length (no list of pieces joined at the end,
    which would hold the track twice; a header that under-counts makes it grow), cut at `max_seconds`."""

    def __init__(self, source_rate: int, channels: int, sr: int, seconds: float | None, max_seconds: float | None):
        import soxr

        check_shape(source_rate, channels)
        self.source_rate = source_rate
        self.limit = int(max_seconds * sr) if max_seconds else None
        wanted = int(min(seconds, MAX_PREALLOCATED_S) * sr) + 1024 if seconds else 1 << 20
        self.out = np.empty(min(wanted, self.limit) if self.limit else wanted, dtype=np.float32)
        self.filled = 0
        self.resampler = (
            None if source_rate == sr else soxr.ResampleStream(source_rate, sr, 1, dtype="float32", quality="HQ")
        )

    @property
    def full(self) -> bool:
        return self.limit is not None and self.filled >= self.limit

    def add(self, mono: np.ndarray, last: bool = False) -> None:
        if self.resampler is not None:
            mono = self.resampler.resample_chunk(mono, last=last)
        if self.limit is not None:  # nothing past the cap is kept, nor room made for it
            mono = mono[: max(self.limit - self.filled, 0)]
        if self.filled + mono.size > self.out.size:
            self.out = np.resize(self.out, max(2 * self.out.size, self.filled + mono.size))
        self.out[self.filled : self.filled + mono.size] = mono
        self.filled += mono.size

    def signal(self) -> np.ndarray:
        return self.out[: min(self.filled, self.limit or self.filled)]


def check_shape(rate: int, channels: int) -> None:
    """Refuse a sample rate or channel count that no audio file has, before anything is sized by it."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise DecodeError(f"a sample rate of {rate} Hz, outside what audio files use ({MIN_RATE:,} to {MAX_RATE:,} Hz)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise DecodeError(f"{channels} channels, more than audio files have (at most {MAX_CHANNELS})")


def _downmix(channels: int) -> np.ndarray:
    """The channels' mean as a vector: a matrix-vector product is several times faster than a mean over the
    short channel axis."""
    return np.full(channels, 1.0 / max(channels, 1), dtype=np.float32)


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
    for decoder in (decode_ffmpeg, decode_soundfile):
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


def padded_slice(y: np.ndarray, start: int, stop: int) -> np.ndarray:
    """y[start:stop] with zeros where the range runs past either end."""
    out = np.zeros(stop - start, dtype=np.float32)
    lo, hi = max(start, 0), min(stop, y.size)
    if hi > lo:
        out[lo - start : hi - start] = y[lo:hi]
    return out


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
