"""Where extraction time goes: cProfile of the project's extraction in one process.

    python benchmarks/profile_extract.py [FOLDER] [--limit 20] [--top 25]

Writes the functions with the most time of their own to benchmarks/PROFILE.md, with the share of
decoding (ffmpeg through PyAV, libsndfile as fallback) against analysis, and the musicnn embedding's.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import pstats
import re
import sys
from pathlib import Path

from musicrec.analysis import extract
from musicrec.library import discover

HERE = Path(__file__).resolve().parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", nargs="?", default=str(HERE.parent / "dev-corpus"))
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--markdown", default=str(HERE / "PROFILE.md"))
    args = p.parse_args()
    worklist = discover.scan(args.folder).files.iloc[: args.limit]
    extract.warm_up()
    profiler = cProfile.Profile()
    profiler.enable()
    feats, _ = extract.extract(args.folder, worklist, workers=1)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    cumulative = {
        f"{Path(file).stem}.{name}": ct
        for (file, _, name), (_, _, _, ct, _) in stats.stats.items()
        if "musicrec" in file
    }
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(args.top)
    audio_s = float(feats["duration_s"].sum())
    # Module paths relative to site-packages or the project: no machine's folders in the report.
    listing = re.sub(r"\S*/(site-packages|include)/", "", buffer.getvalue().strip())
    text = (
        f"# Extraction profile\n\n{dt.date.today().isoformat()}: {len(feats)} files, {audio_s / 3600:.2f} h of "
        f"audio, {total:.1f} s in one process ({audio_s / total:.0f}x realtime).\n\n"
        f"- decoding (`audio.decode` and what it calls): "
        f"{cumulative.get('audio.decode', 0):.1f} s ({100 * cumulative.get('audio.decode', 0) / total:.0f}%)\n"
        f"- analysis (`features.compute`): {cumulative.get('features.compute', 0):.1f} s "
        f"({100 * cumulative.get('features.compute', 0) / total:.0f}%), of which the musicnn embedding "
        f"(`musicnn.embed`): {cumulative.get('musicnn.embed', 0):.1f} s "
        f"({100 * cumulative.get('musicnn.embed', 0) / total:.0f}%)\n"
        f"- content hash: {cumulative.get('extract.content_hash', 0):.1f} s\n\n"
        f"Functions by own time:\n\n```\n{listing}\n```\n"
    )
    Path(args.markdown).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
