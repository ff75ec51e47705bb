"""Decoding: formats, shapes, fallback between decoders, and bad files."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from musicrec.analysis import audio
from support.audio import ffmpeg_generate, tone

SR = 22050


@pytest.mark.parametrize(
    "name, sr, channels, extra",
    [
        ("a.mp3", 44100, 2, []),
        ("a.ogg", 44100, 2, ["-c:a", "libvorbis"]),
        ("a.opus", 48000, 2, ["-c:a", "libopus"]),
        ("a.flac", 96000, 1, []),
        ("a.m4a", 44100, 2, ["-c:a", "aac"]),
        ("a.wav", 8000, 1, ["-c:a", "pcm_u8"]),
        ("a.wav", 48000, 6, ["-c:a", "pcm_s24le"]),
        ("UPPER CASE.WAV", 44100, 2, ["-c:a", "pcm_f32le"]),
        ("ünïcödé — 曲.flac", 22050, 2, []),
    ],
)
def test_every_common_format_decodes_to_mono_at_the_analysis_rate(tmp_path, name, sr, channels, extra):
    path = ffmpeg_generate(tmp_path / name, seconds=1.0, sr=sr, channels=channels, extra=extra)
    y = audio.decode(path, SR)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(y.size / SR - 1.0) < 0.08  # encoder padding (mp3, aac, opus) adds a few ms
    # The 440 Hz tone survives: its spectrum peaks there.
    spectrum = np.abs(np.fft.rfft(y[: SR // 2]))
    assert abs(np.argmax(spectrum) * 2 - 440) <= 4


def test_soundfile_reads_what_ffmpeg_rejects(tmp_path, monkeypatch):
    path = tmp_path / "x.ogg"
    sf.write(path, tone(seconds=1.0, sr=44100, channels=2), 44100, subtype="VORBIS")

    def reject(path, sr, max_seconds=None):
        raise audio.DecodeError("ffmpeg: Header processing failed")

    monkeypatch.setattr(audio, "decode_ffmpeg", reject)
    y = audio.decode(path, SR)
    assert abs(y.size - SR) <= 2
    assert 0.4 < np.max(np.abs(y)) < 0.6


def test_ffmpeg_reads_what_soundfile_cannot(tmp_path):
    path = ffmpeg_generate(tmp_path / "x.m4a", extra=["-c:a", "aac"])
    with pytest.raises(audio.DecodeError):
        audio.decode_soundfile(path, SR)
    assert audio.decode(path, SR).size > 0


@pytest.mark.parametrize(
    "name, content",
    [
        ("empty.mp3", b""),
        ("notes.mp3", b"this is a text file renamed to mp3\n" * 20),
        ("noise.ogg", np.random.default_rng(1).bytes(20000)),
    ],
)
def test_unreadable_files_raise_a_decode_error_with_each_decoders_reason(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(audio.DecodeError) as info:
        audio.decode(path, SR)
    reason = str(info.value)
    if content:
        assert reason.startswith("not readable as audio (damaged, or not the format its name says)")
        assert "soundfile: " in reason and "ffmpeg: " in reason and "pipe" not in reason
    else:
        assert reason == "empty file (0 bytes)"


def test_a_fifo_is_not_reported_as_missing(tmp_path):
    os.mkfifo(tmp_path / "x.wav")
    with pytest.raises(audio.DecodeError, match="not a regular file"):
        audio.decode(tmp_path / "x.wav", SR)


def test_truncated_file_decodes_what_is_there(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, tone(seconds=2.0, sr=44100), 44100)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    y = audio.decode(path, SR)
    assert 0.5 < y.size / SR < 1.5


def test_missing_file_is_a_decode_error(tmp_path):
    with pytest.raises(audio.DecodeError, match="not found"):
        audio.decode(tmp_path / "gone.flac", SR)


def test_peak_normalize_scales_to_one_and_leaves_silence_alone():
    y, peak = audio.peak_normalize(np.array([0.1, -0.25, 0.2], dtype=np.float32))
    assert peak == pytest.approx(0.25) and np.max(np.abs(y)) == pytest.approx(1.0)
    silent, peak = audio.peak_normalize(np.zeros(10, dtype=np.float32))
    assert peak == 0.0 and not silent.any()


def test_ffmpeg_alone_reads_what_soundfile_also_reads(tmp_path, monkeypatch):
    path = tmp_path / "x.flac"
    sf.write(path, tone(seconds=1.0, sr=44100), 44100)

    def reject(path, sr, max_seconds=None):
        raise audio.DecodeError("soundfile: unsupported")

    monkeypatch.setattr(audio, "decode_soundfile", reject)
    assert abs(audio.decode(path, SR).size - SR) <= 2


def test_decoders_agree(tmp_path):
    path = tmp_path / "x.ogg"
    sf.write(path, tone(330, seconds=2.0, sr=44100, channels=2), 44100, subtype="VORBIS")
    # The same downmix (the channels' mean) and resampler: only the two Vorbis decoders' rounding differs.
    a = audio.decode_soundfile(path, SR)
    b = audio.decode_ffmpeg(path, SR)
    assert a.size == b.size
    assert np.sqrt(np.mean((a - b) ** 2)) < 1e-5


def test_the_mp3_decoders_own_notes_stay_off_stderr(tmp_path):
    broken = tmp_path / "broken download.mp3"
    broken.write_bytes(np.random.default_rng(7).bytes(4096))
    code = (
        "import sys; from pathlib import Path; from musicrec.analysis import audio\n"
        "try:\n    audio.decode(Path(sys.argv[1]), 22050)\nexcept audio.DecodeError as e:\n    print(e)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(broken)], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("not readable as audio")
    assert "mpg123" not in out.stderr and "Note:" not in out.stderr and "warning" not in out.stderr


def test_a_damaged_stretch_in_the_middle_costs_only_itself(tmp_path):
    path = ffmpeg_generate(tmp_path / "scratched.mp3", seconds=10.0)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = np.random.default_rng(1).bytes(3000)
    path.write_bytes(bytes(data))
    with pytest.raises(audio.DecodeError):
        audio.decode_soundfile(path, SR)
    assert audio.decode(path, SR).size / SR > 9.0


def test_a_chained_ogg_that_changes_its_channels_falls_back_to_soundfile(tmp_path):
    mono = ffmpeg_generate(tmp_path / "a.ogg", seconds=2.0, channels=1, extra=["-c:a", "libvorbis"])
    stereo = ffmpeg_generate(tmp_path / "b.ogg", seconds=2.0, sr=48000, extra=["-c:a", "libvorbis"])
    chained = tmp_path / "chained.ogg"
    chained.write_bytes(mono.read_bytes() + stereo.read_bytes())
    with pytest.raises(audio.DecodeError, match="ffmpeg: "):
        audio.decode_ffmpeg(chained, SR)
    assert audio.decode(chained, SR).size / SR == pytest.approx(2.0, abs=0.05)


def test_every_channel_count_decodes_without_crashing_the_process(tmp_path):
    """1 to 16 channels (WAV), and 7.1 in every compressed format: PyAV lists a plane too many for 8 or more
    channels, and reading it crashed the whole process (SIGSEGV), so the decoding runs in a child here."""
    files = []
    for channels in range(1, 17):
        signal = np.column_stack([tone(220.0 * (1 + c % 4), seconds=0.5, sr=48000) for c in range(channels)])
        sf.write(tmp_path / f"{channels}ch.wav", signal, 48000, subtype="PCM_16")
        files.append(tmp_path / f"{channels}ch.wav")
    for name, codec in (("7.1.m4a", "aac"), ("7.1.flac", "flac"), ("7.1.ogg", "libvorbis"), ("7.1.opus", "libopus")):
        ffmpeg_generate(tmp_path / name, seconds=0.5, sr=48000, channels=8, extra=["-c:a", codec])
        files.append(tmp_path / name)
    code = (
        "import sys; from pathlib import Path; from musicrec.analysis import audio\n"
        "for name in sys.argv[1:]:\n"
        "    print(Path(name).name, audio.decode_ffmpeg(Path(name), 22050).size)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *map(str, files)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stdout[-500:], done.stderr[-2000:])
    sizes = dict(line.split() for line in done.stdout.splitlines())
    assert len(sizes) == len(files) and all(abs(int(n) - 11025) <= 1100 for n in sizes.values()), sizes


def _wav_declaring(path, rate: int | None = None, channels: int | None = None, seconds: float = 1.0):
    """A real 8 kHz mono WAV whose header then claims another sample rate or channel count."""
    sf.write(path, tone(440.0, seconds=seconds, sr=8000), 8000, subtype="PCM_16")
    header = bytearray(path.read_bytes())
    if rate is not None:
        header[24:28] = rate.to_bytes(4, "little")
        header[28:32] = (rate * 2).to_bytes(4, "little")
    if channels is not None:
        header[22:24] = channels.to_bytes(2, "little")
    path.write_bytes(bytes(header))
    return path


@pytest.mark.parametrize(
    "rate, channels, said",
    [
        (1, None, "a sample rate of 1 Hz, outside what audio files use"),
        (4_000_000, None, "a sample rate of 4000000 Hz"),
        (None, 200, "200 channels, more than audio files have"),
    ],
)
def test_a_header_no_audio_file_has_is_refused_before_anything_is_sized_by_it(tmp_path, rate, channels, said):
    """A 32 KB WAV declaring 1 Hz took 5.2 GB: the decoding runs in a child, whose peak memory is measured."""
    path = _wav_declaring(tmp_path / "bomb.wav", rate, channels, seconds=2.0)
    code = (
        "import re, sys; from pathlib import Path; from musicrec.analysis import audio\n"
        "try:\n"
        "    audio.decode(Path(sys.argv[1]), 22050, max_seconds=1800)\n"
        "    print('decoded')\n"
        "except audio.DecodeError as exc:\n"
        "    print(exc)\n"
        # VmHWM is this process's own peak; ru_maxrss would also count the test process it was started from.
        "print(int(re.search(r'VmHWM:\\s+(\\d+)', Path('/proc/self/status').read_text())[1]) // 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    message, peak_mb = done.stdout.strip().rsplit("\n", 1)
    assert said in message and "not readable as audio" in message
    assert int(peak_mb) < 400, f"{peak_mb} MB"
