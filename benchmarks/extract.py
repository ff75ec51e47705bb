"""Extraction throughput and memory, against a seed-style baseline, in one run on the same files.

    python benchmarks/extract.py [FOLDER] [--limit N] [--out benchmarks/results.json]

Modes, each in a fresh process so that peak RSS is its own:
  baseline        pydub AudioSegment.from_file + effects.normalize, samples to numpy, then librosa's mfcc,
                  spectral_centroid and zero_crossing_rate each on the raw signal (the seed's approach)
  decode          floor: the project's decoding alone (ffmpeg's decoders in process, to 22.05 kHz mono float32)
  decode_stft     floor: decoding plus one STFT magnitude per track
  project_1       the project's extraction (full default feature set), one process
  project_2       the same with 2 worker processes
  longest         the project's extraction of the longest file alone, for its peak RSS
  long_30min      the same on a generated 30-minute stereo 44.1 kHz track
Results go to a JSON file and a markdown table in benchmarks/RESULTS.md.

With --peers, whole commands are also timed (wall and CPU seconds, start-up included) on the same files,
on all of them and on a subset of 44.1 kHz stereo tracks (--subset-minutes, the first tracks by key):
`musicrec features` with 1 and 2 workers against bliss (`bliss_audio.Song(path).analysis` in a process
pool of the same size; see peers.py for where it cannot run), back to back in pairs (--repeat).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYDUB_CODECS = {
    ".ogg": "vorbis",
    ".oga": "vorbis",
    ".opus": "libopus",
    ".mp3": "mp3",
    ".flac": "flac",
    ".m4a": "aac",
    ".aac": "aac",
    ".wav": None,
}
MODES = ["baseline", "decode", "decode_stft", "project_1", "project_2", "longest", "long_30min"]


def _rss_mb(who) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _seed_style(path: Path) -> float:
    import imageio_ffmpeg
    import librosa
    import numpy as np
    from pydub import AudioSegment, effects

    AudioSegment.converter = shutil.which("ffmpeg") or imageio_ffmpeg.get_ffmpeg_exe()
    # pydub probes with ffprobe unless told the codec; the wheel's ffmpeg comes without ffprobe.
    segment = effects.normalize(AudioSegment.from_file(path, codec=PYDUB_CODECS.get(path.suffix.lower())))
    samples = np.array(segment.get_array_of_samples(), dtype=np.float32).reshape(-1, segment.channels).mean(axis=1)
    y = samples / float(1 << (8 * segment.sample_width - 1))
    sr = segment.frame_rate
    librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20)
    librosa.feature.spectral_centroid(y=y, sr=sr)
    librosa.feature.zero_crossing_rate(y)
    return len(y) / sr


def _decode_only(path: Path) -> float:
    from musicrec.analysis import audio, features

    return audio.decode(path, features.SETTINGS.sample_rate).size / features.SETTINGS.sample_rate


def _decode_stft(path: Path) -> float:
    from musicrec.analysis import audio, features

    s = features.SETTINGS
    tables = features._tables(s)
    y = audio.decode(path, s.sample_rate)
    step = s.block_frames * s.hop_length
    for start in range(0, y.size - s.n_fft + 1, step):
        features._magnitude(y[start : start + step + s.n_fft - s.hop_length], s, tables)
    return y.size / s.sample_rate


def run_mode(mode: str, files: list[str]) -> dict:
    """Runs inside the child process."""
    import pandas as pd

    from musicrec.analysis import extract

    paths = [Path(f) for f in files]
    per_file = {"baseline": _seed_style, "decode": _decode_only, "decode_stft": _decode_stft}
    if mode in per_file:
        per_file[mode](paths[0])  # imports and first-call compilation are not part of throughput
        started = time.perf_counter()
        audio_s = sum(per_file[mode](p) for p in paths)
        processes = 1
    else:
        processes = 2 if mode == "project_2" else 1
        root = Path(os.path.commonpath([str(p.parent) for p in paths]))
        keys = [p.relative_to(root).as_posix() for p in paths]
        worklist = pd.DataFrame(
            {"track_key": keys, "folder": [str(Path(k).parent) for k in keys], "file": [p.name for p in paths]}
        )
        extract.warm_up()
        started = time.perf_counter()
        feats, quarantine = extract.extract(root, worklist, workers=processes)
        audio_s = float(feats["duration_s"].sum())
    wall = time.perf_counter() - started
    peak = max(_rss_mb(resource.RUSAGE_SELF), _rss_mb(resource.RUSAGE_CHILDREN) if processes > 1 else 0.0)
    return {
        "mode": mode,
        "files": len(paths),
        "audio_hours": audio_s / 3600,
        "wall_s": wall,
        "processes": processes,
        "x_realtime": audio_s / wall,
        "x_realtime_per_core": audio_s / wall / processes,
        "peak_rss_mb": peak,
    }


def _audio_files(folder: Path, limit: int | None) -> list[str]:
    from musicrec.library import discover

    worklist = discover.scan(folder).files
    files = [str(folder / k) for k in worklist["track_key"]]
    return files[:limit] if limit else files


def _longest(files: list[str]) -> str:
    import soundfile as sf

    def seconds(f):
        try:
            return sf.info(f).duration
        except Exception:
            return 0.0

    return max(files, key=seconds)


def _long_track(dest: Path, minutes: float = 30.0, sr: int = 44100) -> str:
    """A generated long track (tones over noise), written block by block."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    block = 10 * sr
    t = np.arange(block) / sr
    with sf.SoundFile(dest, "w", samplerate=sr, channels=2, subtype="PCM_16") as f:
        for i in range(int(minutes * 60 * sr) // block):
            tone = 0.3 * np.sin(2 * np.pi * (220 + 20 * (i % 12)) * t)
            y = (tone + 0.05 * rng.standard_normal(block)).astype(np.float32)
            f.write(np.column_stack([y, 0.8 * y]))
    return str(dest)


def _child(mode: str, files: list[str]) -> dict:
    # One BLAS thread in every mode: "one process" is one core, for the baseline as for the project.
    env = dict(
        os.environ,
        PYTHONPATH=str(HERE.parent / "include"),
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode],
        input=json.dumps(files),
        text=True,
        capture_output=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"mode {mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


BLISS_SCRIPT = """
import concurrent.futures, sys
import bliss_audio

def analysed(path):
    try:
        return bliss_audio.Song(path).analysis is not None
    except BaseException:  # a pyo3 panic for a file bliss cannot read
        return False

if __name__ == "__main__":
    with concurrent.futures.ProcessPoolExecutor(int(sys.argv[1])) as pool:
        print(sum(pool.map(analysed, sys.argv[2:])), "analysed")
"""


def _whole(cmd: list[str]) -> dict:
    """A command's wall time and the CPU seconds of it and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed:\n{out.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu}


def _subset(files: list[str], minutes: float) -> list[str]:
    """The first files (by key) of 44.1 kHz stereo audio, up to `minutes` in all."""
    import soundfile as sf

    chosen, total = [], 0.0
    for f in files:
        try:
            info = sf.info(f)
        except Exception:  # noqa: BLE001 - not a format libsndfile reads: not in the subset
            continue
        if info.samplerate == 44100 and info.channels == 2 and total + info.duration <= minutes * 60:
            chosen.append(f)
            total += info.duration
    return chosen


def peers(files: list[str], scratch: Path, repeat: int) -> dict:
    """musicrec features and bliss as whole commands, 1 and 2 processes each, on the same files.

    This machine's speed drifts by tens of percent over minutes, so the two commands run back to back as a
    pair, in alternating order, `repeat` times with 2 processes (once with 1); the ratio is the median of
    the pairs' ratios.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "research"))  # the peer systems live there
    import peers as peer_systems

    library = scratch / f"library-{len(files)}"
    library.mkdir()
    for i, f in enumerate(files):
        (library / f"{i:04d}{Path(f).suffix}").symlink_to(f)
    minutes = sum(_duration(f) for f in files) / 60
    found = {"files": len(files), "minutes": minutes}
    why = peer_systems.bliss_runs(files[0])
    if why:
        found["bliss"] = why
    script = scratch / "bliss_pool.py"
    script.write_text(BLISS_SCRIPT)
    for workers in (1, 2):
        commands = {
            "musicrec": [sys.executable, "-m", "musicrec.cli", "features", "--library", str(library)]
            + ["--workers", str(workers), "--out", str(scratch / "features.parquet")],
            "bliss": None if why else [sys.executable, str(script), str(workers), *files],
        }
        runs = {"musicrec": [], "bliss": []}
        for r in range(repeat if workers == 2 else 1):
            for system in ("musicrec", "bliss") if r % 2 == 0 else ("bliss", "musicrec"):
                if commands[system]:
                    runs[system].append(_whole(commands[system]))
        for system, timed in runs.items():
            if timed:
                found[f"{system}_{workers}"] = {
                    key: statistics.median(t[key] for t in timed) for key in ("wall_s", "cpu_s")
                } | {"runs": timed}
        if runs["bliss"]:
            pairs = [b["wall_s"] / m["wall_s"] for m, b in zip(runs["musicrec"], runs["bliss"], strict=True)]
            found[f"ratio_{workers}"] = {"median": statistics.median(pairs), "pairs": pairs}
    return found


def _duration(f: str) -> float:
    import soundfile as sf

    try:
        return sf.info(f).duration
    except Exception:  # noqa: BLE001
        return 0.0


def peers_markdown(name: str, found: dict) -> list[str]:
    lines = [f"\n## Whole commands against bliss: {name} ({found['files']} files, {found['minutes']:.0f} min)\n"]
    lines += ["| command | processes | runs | wall s (median) | CPU s (median) |", "|---|---|---|---|---|"]
    for system in ("musicrec", "bliss"):
        for workers in (1, 2):
            r = found.get(f"{system}_{workers}")
            if r:
                lines.append(f"| {system} | {workers} | {len(r['runs'])} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} |")
    if isinstance(found.get("bliss"), str):
        lines.append(f"\nbliss not measured: {found['bliss']}.")
        return lines
    for workers in (1, 2):
        ratio = found[f"ratio_{workers}"]
        pairs = ", ".join(f"{x:.2f}" for x in ratio["pairs"])
        lines.append(
            f"\n- musicrec against bliss (bliss's wall time over musicrec's), {workers} process(es): "
            f"**{ratio['median']:.2f}x** (pairs run back to back: {pairs})"
        )
    return lines


def markdown(results: dict) -> str:
    rows = results["modes"]
    base = rows["baseline"]["x_realtime"]
    one = rows["project_1"]["x_realtime"]
    lines = [
        "# Extraction benchmark\n",
        f"{results['date']}, {results['machine']}; {rows['project_1']['files']} files, "
        f"{rows['project_1']['audio_hours']:.2f} h of audio from `{results['folder']}`.\n",
        "| mode | processes | wall s | x realtime | x realtime per core | peak RSS per process (MB) | vs baseline |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in MODES:
        r = rows[name]
        lines.append(
            f"| {name} | {r['processes']} | {r['wall_s']:.1f} | {r['x_realtime']:.0f} | "
            f"{r['x_realtime_per_core']:.0f} | {r['peak_rss_mb']:.0f} | {r['x_realtime'] / base:.2f} |"
        )
    lines += [
        "",
        f"- project, one process, vs baseline: **{one / base:.2f}x** (target at least 3x, aim 4x)",
        f"- project, 2 processes, vs one: **{rows['project_2']['x_realtime'] / one:.2f}x** (target at least 1.8x)",
        f"- peak RSS on the longest file ({results['longest_file']}, {rows['longest']['audio_hours'] * 60:.1f} min): "
        f"**{rows['longest']['peak_rss_mb']:.0f} MB** (target under 500 MB)",
        f"- peak RSS on a generated 30-minute track: **{rows['long_30min']['peak_rss_mb']:.0f} MB**",
    ]
    for name, found in results.get("peers", {}).items():
        lines += peers_markdown(name, found)
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", nargs="?", default=str(HERE.parent / "dev-corpus"))
    p.add_argument("--limit", type=int, help="take only the first N files")
    p.add_argument("--out", default=str(HERE / "results.json"))
    p.add_argument("--markdown", default=str(HERE / "RESULTS.md"))
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--peers", action="store_true", help="also time whole commands against bliss")
    p.add_argument("--subset-minutes", type=float, default=76.0, help="the 44.1 kHz stereo subset's length")
    p.add_argument("--repeat", type=int, default=3, help="pairs of whole commands with 2 processes")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(run_mode(args.child, json.loads(sys.stdin.read()))))
        return 0
    folder = Path(args.folder).resolve()
    files = _audio_files(folder, args.limit)
    if not files:
        print(f"no audio files in {folder}", file=sys.stderr)
        return 2
    results = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "folder": folder.name,
        "longest_file": Path(_longest(files)).name,
        "modes": {},
    }
    scratch = Path(tempfile.mkdtemp(prefix="musicrec-bench-"))
    for mode in args.modes.split(","):
        chosen = files
        if mode == "longest":
            chosen = [f for f in files if Path(f).name == results["longest_file"]][:1]
        elif mode == "long_30min":
            chosen = [_long_track(scratch / "thirty minutes.wav")]
        print(f"{mode}: {len(chosen)} files ...", file=sys.stderr, flush=True)
        results["modes"][mode] = _child(mode, chosen)
        r = results["modes"][mode]
        print(
            f"  {r['wall_s']:.1f} s, {r['x_realtime']:.0f}x realtime, peak {r['peak_rss_mb']:.0f} MB",
            file=sys.stderr,
            flush=True,
        )
    if args.peers:
        subset = _subset(files, args.subset_minutes)
        results["peers"] = {f"{args.subset_minutes:.0f}-minute subset": peers(subset, scratch, args.repeat)}
        results["peers"][folder.name] = peers(files, scratch, args.repeat)
    shutil.rmtree(scratch, ignore_errors=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    if set(MODES) <= set(results["modes"]):
        Path(args.markdown).write_text(markdown(results))
        print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
