"""Duplicates measured: copies of real tracks made as libraries hold them, hard negatives beside them, the
pipeline run over all of it, and its groups scored against what is known.

    python benchmarks/duplicates.py CORPUS WORK [--tracks 20]    # CORPUS: the dev corpus (fetch_dev_corpus.sh)

WORK/library holds the whole corpus (linked) and, for `--tracks` of its tracks drawn with a fixed seed:
copies (MP3 128 kb/s, Opus 64 kb/s, AAC 128 kb/s, FLAC; resampled to 44.1 and 48 kHz; trimmed 0.5-5 s at
either end; faded in and out; 6 dB louder and quieter), each in a folder of its own; and hard negatives:
the track's first and second halves, and the track 5% faster and a whole tone higher (another recording by
the README's definition). `musicrec run` indexes WORK/library into WORK/data; then every pair of files is
scored: the same recording (a track and its copies, and files of identical bytes) or not. Reported:
pairwise precision and recall, the groups' purity, and the same for the embedding alone (pairs of
nearest neighbours within a distance, at the distance that reaches the finder's recall). Writes
benchmarks/DUPLICATES.md (or --markdown).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import soxr

from musicrec.analysis import audio
from musicrec.index import neighbours
from musicrec.store import storage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from support.audio import encode  # noqa: E402  (the tests' own encoder, through PyAV)

# Files of the dev corpus that hold the same recording: two games ship this piece (one with 5 s more at its
# end); aligned at 0 s, 91% of their fingerprints' bits agree over two minutes, where different pieces agree
# on about half.
SAME_IN_CORPUS = [("flare-game/battle_theme.ogg", "supertux-data/battle_theme.ogg")]
SR = 44100
LOSSY = {"mp3-128k": ("libmp3lame", "mp3", 44100, 128_000), "opus-64k": ("libopus", "ogg", 48000, 64_000),
         "aac-128k": ("aac", "adts", 44100, 128_000)}  # fmt: skip


def _copies(y: np.ndarray, rng) -> dict[str, tuple[np.ndarray, int, str]]:
    """name -> (signal, rate, how to write it): the track as libraries hold it again."""
    head, tail = rng.uniform(0.5, 5.0, 2)
    fade = np.minimum(1.0, np.arange(y.size) / (3 * SR)) * np.minimum(1.0, np.arange(y.size)[::-1] / (3 * SR))
    out = {name: (soxr.resample(y, SR, rate), rate, name) for name, (_, _, rate, _) in LOSSY.items()}
    out |= {
        "flac": (y, SR, "flac"),
        "22050hz": (soxr.resample(y, SR, 22050), 22050, "flac"),
        "48000hz": (soxr.resample(y, SR, 48000), 48000, "flac"),
        "trimmed": (y[int(head * SR) : y.size - int(tail * SR)], SR, "flac"),
        "faded": (y * fade, SR, "flac"),
        "louder": (np.clip(y * 2.0, -1, 1), SR, "flac"),
        "quieter": (y * 0.5, SR, "flac"),
    }
    return out


def _negatives(y: np.ndarray) -> dict[str, tuple[np.ndarray, int, str]]:
    return {
        "first-half": (y[: y.size // 2], SR, "flac"),
        "second-half": (y[y.size // 2 :], SR, "flac"),
        "5pc-faster": (soxr.resample(y, SR, round(SR / 1.05)), SR, "flac"),  # played at SR: faster, higher
        "tone-higher": (soxr.resample(y, SR, round(SR / 2 ** (2 / 12))), SR, "flac"),
    }


def build(corpus: Path, work: Path, tracks: int) -> pd.DataFrame:
    """The library, and the truth: each file's recording (its original's key, or its own)."""
    library = work / "library"
    originals = sorted(p for p in corpus.glob("*/*") if audio.is_audio_file(p))
    truth = []
    for path in originals:
        key = f"corpus/{path.parent.name}/{path.name}"
        (library / key).parent.mkdir(parents=True, exist_ok=True)
        if not (library / key).exists():
            (library / key).symlink_to(path)
        truth.append((key, key))
    rng = np.random.default_rng(7)
    for path in rng.choice(originals, tracks, replace=False):
        original = f"corpus/{path.parent.name}/{path.name}"
        y = audio.decode(path, SR)
        made = [(name, v, original) for name, v in _copies(y, rng).items()]
        made += [(name, v, None) for name, v in _negatives(y).items()]
        for name, (signal, rate, how), recording in made:
            stem = f"{name}/{path.parent.name}-{path.stem}"
            fmt = LOSSY[how][1] if how in LOSSY else "flac"
            target = library / f"{stem}.{'m4a' if fmt == 'adts' else fmt}"
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():  # made by an earlier run: unchanged, so its features are reused
                pass
            elif how in LOSSY:
                codec, _, _, bitrate = LOSSY[how]
                encode(signal, target, codec, fmt, rate, bitrate)
            else:
                sf.write(target, signal, rate)
            key = str(target.relative_to(library))
            truth.append((key, recording or key))
    return pd.DataFrame(truth, columns=["track_key", "truth"])


def _pairs(labels: pd.Series) -> set[tuple[str, str]]:
    out = set()
    for _, members in labels.groupby(labels):
        keys = sorted(members.index)
        out |= {(a, b) for i, a in enumerate(keys) for b in keys[i + 1 :]}
    return out


def score(truth: pd.Series, predicted: pd.Series) -> dict:
    """Pairwise precision and recall, and purity (the share of files whose group holds only their recording)."""
    same, found = _pairs(truth), _pairs(predicted)
    hit = len(same & found)
    pure = predicted.groupby(predicted).transform(lambda g: truth[g.index].nunique() == 1)
    return {
        "pairs": len(same),
        "found": len(found),
        "precision": hit / len(found) if found else 1.0,
        "recall": hit / len(same) if same else 1.0,
        "purity": float(pure.mean()),
        "wrong_pairs": len(found - same),
        "wrong": sorted(found - same)[:10],
    }


def nearest(data: Path):
    """Each track's 5 nearest in the published embedding (cosine), and the tracks' keys."""
    emb = pd.read_parquet(storage.require_current(data) / storage.EMBEDDINGS)
    found = neighbours.find(emb.drop(columns="track_key").to_numpy(np.float32), 5, "cosine")
    return found, emb["track_key"].to_numpy()


def groups_within(found, keys, distance: float) -> pd.Series:
    """The embedding alone: tracks joined to their nearest within `distance`, transitively."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows = np.repeat(np.arange(len(keys)), found.rows.shape[1])
    near = (found.rows.ravel() >= 0) & (found.distances.ravel() <= distance)
    graph = coo_matrix((np.ones(near.sum()), (rows[near], found.rows.ravel()[near])), shape=(len(keys),) * 2)
    return pd.Series(connected_components(graph, directed=False)[1], index=keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--tracks", type=int, default=20)
    parser.add_argument("--markdown", type=Path, default=HERE / "DUPLICATES.md")
    args = parser.parse_args()
    truth = build(args.corpus, args.work, args.tracks).set_index("track_key")["truth"]
    data = args.work / "data"
    run = [str(Path(sys.executable).with_name("musicrec")), "run", "--library", str(args.work / "library")]
    subprocess.run([*run, "--data-dir", str(data)], check=True)
    current = storage.require_current(data)
    table = pd.read_parquet(current / storage.DUPLICATES).set_index("track_key")
    hashes = pd.read_parquet(current / storage.TRACKS, columns=["track_key", "content_hash"]).set_index("track_key")
    # files of identical bytes are one recording whatever the truth table says (the corpus has such copies)
    truth = truth.groupby(hashes["content_hash"].reindex(truth.index)).transform("first")
    for a, b in SAME_IN_CORPUS:
        truth[truth == truth[f"corpus/{b}"]] = truth[f"corpus/{a}"]
    finder = score(truth, table["recording"].reindex(truth.index))
    found, keys = nearest(data)
    for distance in np.geomspace(1e-4, 0.5, 60):  # the smallest distance at which it finds as many
        baseline = score(truth, groups_within(found, keys, distance).reindex(truth.index))
        if baseline["recall"] >= finder["recall"]:
            break
    corpus_only = truth.index.str.startswith("corpus/")
    in_corpus = score(truth[corpus_only], table["recording"].reindex(truth.index)[corpus_only])
    stats = pd.read_json(current / storage.SUMMARY, typ="series")["stages"]["duplicates"]
    lines = [
        "# Duplicates: the finder against the embedding alone",
        "",
        f"{dt.date.today()}, {platform.machine()}, "
        f"`python benchmarks/duplicates.py CORPUS WORK --tracks {args.tracks}`:"
        f" {len(truth)} files, {corpus_only.sum()} of the dev corpus and, for {args.tracks} of its tracks, 11"
        " copies each (MP3 128k, Opus 64k, AAC 128k, FLAC, 22.05 and 48 kHz, trimmed 0.5-5 s at either end,"
        " faded, 6 dB louder and quieter) and 4 hard negatives (first and second halves, 5% faster, a whole"
        " tone higher). Pairs of the same recording: "
        f"{finder['pairs']}.",
        "",
        "| method | pairs found | precision | recall | purity |",
        "|---|---|---|---|---|",
        f"| fingerprints (the finder) | {finder['found']} | {finder['precision']:.4f} | {finder['recall']:.4f} |"
        f" {finder['purity']:.4f} |",
        f"| embedding within {distance:.4f} | {baseline['found']} | {baseline['precision']:.4f} |"
        f" {baseline['recall']:.4f} | {baseline['purity']:.4f} |",
        "",
        f"Pairs of different recordings of the dev corpus merged by the finder: {in_corpus['wrong_pairs']}.",
        f"Candidate pairs: {stats['pairs_compared']} ({stats['pairs_reused']} judged by an earlier run); "
        f"the stage took {stats['seconds']:.1f} s.",
        "",
        f"Wrongly merged (at most 10): {finder['wrong'] or 'none'}.",
        f"By the embedding (at most 5): {baseline['wrong'][:5] or 'none'}.",
    ]
    args.markdown.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
