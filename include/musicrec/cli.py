"""The `musicrec` command."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import textwrap
import time

from musicrec import settings
from musicrec.analysis.limits import ANALYSIS_LIMIT_S
from musicrec.errors import explained
from musicrec.progress import show_progress

DEFAULT_DATA_DIR = settings.default_data_dir()


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _folders(text: str | None) -> list[str]:
    return [f.strip() for f in (text or "").split(",") if f.strip()]


def _refused_inputs(library, data_dir, folders: list[str], metadata_path, playlists_dir=None) -> str | None:
    """The sentence that the run's first task would fail with on these inputs, said before Airflow starts:
    the same checks, in the same words (a metadata file that is not a table included)."""
    from musicrec.errors import InputError
    from musicrec.library import discover as discovery
    from musicrec.library import metadata
    from musicrec.pipeline import inputs
    from musicrec.store import storage

    try:
        metadata_file = storage.root(metadata_path) if metadata_path else None
        playlists = storage.root(playlists_dir) if playlists_dir else None
        folders = discovery.normalize_folders(folders)
        inputs.check(storage.root(library), storage.root(data_dir), folders, metadata_file, playlists)
        if metadata_path:
            metadata.read_table(metadata_path)
    except Exception as exc:  # bad input; a library or data dir that object storage refuses or does not answer for
        said = explained(exc) or (exc if isinstance(exc, InputError) else None)
        if said is None:
            raise
        return str(said)
    return None


def _last_index(data_dir) -> str:
    """What a failed or stopped run left current, as found now (not assumed: the bucket may have gone)."""
    from musicrec.store import storage

    try:
        current = storage.current_dir(data_dir)
        if current is None:
            return "no index is current in the data dir (none was published yet, or it has gone)"
        if not (current / storage.RECOMMENDATIONS).exists():
            return f"the current index ({current.name}) is not there any more: run again to build one"
    except Exception as exc:
        return f"the data dir's index could not be checked ({explained(exc) or exc})"
    return f"the last good index is unchanged (run {current.name})"


def run_conf(args) -> dict:
    """The run's conf from `musicrec run`'s options: every run parameter given (the rest take the DAG's
    defaults), locations resolved, with the object storage connection named in them."""
    from musicrec.store import storage
    from musicrec.store.locations import with_conn_id

    given = {p.name: getattr(args, p.name) for p in settings.PARAMETERS if getattr(args, p.name, None) is not None}
    conn_id = given.pop("storage_conn_id", None)

    def located(location: str | None) -> str | None:
        return str(storage.root(with_conn_id(location, conn_id))) if location else None

    # A run of the command line reads the metadata file it is given, not one the environment names.
    return given | {
        "library_path": located(given["library_path"]),
        "metadata_path": located(given.get("metadata_path")),
        "data_dir": located(given.get("data_dir", DEFAULT_DATA_DIR)),
        "folders": given.get("folders", []),
        "full_refresh": bool(given.get("full_refresh")),
    }


def cmd_run(args) -> int:
    from musicrec.airflow import runner
    from musicrec.store import storage

    conf = run_conf(args)
    data_dir = conf["data_dir"]
    refused = _refused_inputs(
        conf["library_path"], data_dir, conf["folders"], conf["metadata_path"], conf.get("playlists_dir")
    )
    if refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    started = time.monotonic()
    unchanged = _unchanged(conf)
    if unchanged:
        print(
            f"nothing changed since the current index (run {unchanged['run_id']}): "
            f"{unchanged['files_found']} files unchanged ({len(unchanged['quarantined'])} of them quarantined), "
            f"the same metadata, parameters and code; it stays current "
            f"(checked in {time.monotonic() - started:.1f} s; --full-refresh extracts every file again)"
        )
        return 0
    result = runner.run_in_child(conf, data_dir, verbose=args.verbose)
    wall = time.monotonic() - started
    if "interrupted" in result:
        name = signal.Signals(result["interrupted"]).name
        print(f"\n{name}: run stopped after {wall:.0f} s; nothing published: {_last_index(data_dir)}", file=sys.stderr)
        return 128 + result["interrupted"]
    if result["state"] == "refused":
        print(f"error: {result['error']}", file=sys.stderr)
        return 2
    if result["state"] != "success":
        failed = ", ".join(result["failed"]) or result.get("error", "?")
        print(f"\nrun {result['run_id']} {result['state']} after {wall:.0f} s; failed tasks: {failed}", file=sys.stderr)
        for error in result.get("errors", [])[:5]:
            print(f"error: {error}", file=sys.stderr)
        hint = "" if args.verbose else " (-v shows Airflow's own log, with the tracebacks)"
        print(f"{_last_index(data_dir)}{hint}", file=sys.stderr)
        return 1
    summary = storage.read_json(storage.run_dir(data_dir, result["run_id"]) / storage.SUMMARY)
    print(format_summary(summary, wall))
    return 0


def _unchanged(conf: dict) -> dict | None:
    """The current index's summary when a run would change nothing; a run with a folder template never is
    (its date picks the folder)."""
    from musicrec import settings
    from musicrec.pipeline import changes

    params = settings.defaults() | conf
    if params["full_refresh"] or params["folder_template"]:
        return None
    return changes.unchanged_since_current(
        params["library_path"], params["data_dir"], params["folders"], params["metadata_path"], params
    )


def format_summary(summary: dict, wall_s: float) -> str:
    lines = [
        "",
        f"indexed {summary['tracks_indexed']} tracks, {summary['audio_hours']:.2f} h of audio "
        f"({summary['files_extracted']} extracted, {summary['files_reused']} unchanged and reused), "
        f"in {wall_s:.0f} s",
        f"metadata: {summary['tracks_with_metadata']} tracks have some (from the metadata file or embedded tags); "
        f"{summary['metadata_rows_not_in_library']} metadata rows name files not in the library",
        f"quarantined: {len(summary['quarantined'])}",
    ]
    lines += [f"  {q['track_key']}: {q['error'][:240]}" for q in summary["quarantined"][:10]]
    lines += [f"warning: {w}" for w in summary.get("warnings", [])]
    if summary.get("files_skipped"):
        lines.append(f"skipped (not read): {summary['files_skipped']}")
        lines += [f"  {s['path']}: {s['reason']}" for s in summary["skipped"][:10]]
    mixes = summary.get("mixes")
    if mixes:
        also = f"; also in {mixes['playlists_dir']}" if mixes["playlists_dir"] else ""
        named = ", ".join(mixes["names"][:4]) + (", ..." if len(mixes["names"]) > 4 else "")
        lines.append(f"mixes: {len(mixes['names'])} ({named}), in {mixes['folder']}{also}")
    stage_times = ", ".join(f"{k} {v:.1f}s" for k, v in summary["stage_seconds"].items() if v is not None)
    lines.append(f"time per stage: {stage_times}")
    return "\n".join(lines)


def _line(t: dict) -> str:
    tags = f" · {', '.join(t['tags'])}" if t.get("tags") else ""
    return f"{t['title']} — {t['artist'] or 'unknown artist'} [{t['genre']}]{tags}  ({t['track_key']})"


def _track_lines(rows: list[dict], score: str) -> list[str]:
    return [f"  {i:2d}. {n[score]:.3f}  {_line(n)}" for i, n in enumerate(rows, start=1)]


def _print_tracks(rows: list[dict], score: str) -> None:
    for line in _track_lines(rows, score):
        print(line)


def _answer(ask, args, show) -> int:
    """Print what `ask()` answers, as JSON with --json, else with `show`; an index or file that cannot answer
    is an error."""
    from musicrec.serve import query

    try:
        result = ask()
    except (query.QueryError, query.DamagedIndex, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2, default=str, ensure_ascii=False))
    else:
        show(result)
    return 0


def cmd_recommend(args) -> int:
    from musicrec.serve import query

    def show(result: dict) -> None:
        print(_line(result["track"]))
        if result["matches"] > 1:
            print(f"  ({result['matches']} tracks match; also: {', '.join(result['other_matches'])})")
        _print_tracks(result["neighbours"], "distance")
        if not result["neighbours"]:
            filters = [*_filters_said(args), *(f"not the same {what}" for what in exclude)]
            print(f"  no track of the index passes the filters ({', '.join(filters)})")

    exclude = tuple(_folders(args.exclude_same))
    return _answer(lambda: query.recommend(args.data_dir, args.query, args.k, exclude, **_only(args)), args, show)


def cmd_similar(args) -> int:
    from musicrec.serve import similar

    def show(result: dict) -> None:
        same = result["same_audio_as"]
        if same:
            print(f"{args.file} is the same audio as {', '.join(same)} (left out below)")
        print(f"{args.file} ({result['duration_s']:.0f} s) sounds like:")
        _print_tracks(result["neighbours"], "distance")

    return _answer(lambda: similar.similar_to_file(args.data_dir, args.file, args.k), args, show)


def _write_m3u(tracks: list[dict], out, said=None) -> None:
    from musicrec.library import m3u
    from musicrec.store import storage

    said = said or sys.stdout  # looked up when called: a test or a caller may have replaced it
    text, left_out = m3u.text(tracks)
    storage.write_text(text, out)
    print(f"-> {out} (paths relative to the library's root)", file=said)
    if left_out:
        names = ", ".join(repr(k) for k in left_out)
        print(f"  left out of it: {names} (M3U cannot list a file whose name holds a line break)", file=said)


def _answer_tracks(ask, args, lines) -> int:
    """A list of tracks (a playlist, a path, a radio, a mix): the lines `lines` makes of it, its note, and
    with --out the list as an M3U file (said on stderr where stdout holds the --json answer)."""
    from musicrec.serve import export

    out = export.output_path(args.out) if args.out else None

    def answered() -> dict:
        result = ask()
        if out and args.json:
            _write_m3u(result["tracks"], out, sys.stderr)
        return result

    def show(result: dict) -> None:
        print("\n".join(lines(result)))
        if result["note"]:
            print(f"  ({result['note']})")
        if out:
            _write_m3u(result["tracks"], out)

    return _answer(answered, args, show)


def cmd_playlist(args) -> int:
    from musicrec.serve import playlist

    def lines(result: dict) -> list[str]:
        return [
            "  (each number is the distance from the track before it)",
            *_track_lines(result["tracks"], "step_distance"),
        ]

    spread = tuple(_folders(args.no_repeat)) if args.window else ()
    ask = (args.data_dir, args.seed, args.length, args.window, spread)
    return _answer_tracks(lambda: playlist.playlist(*ask, **_only(args)), args, lines)


def cmd_path(args) -> int:
    from musicrec.serve import path

    def lines(result: dict) -> list[str]:
        return [
            "  (distance from the track before, and from the step's evenly spaced point)",
            *(
                f"  {t['position']:2d}. {t['step_distance']:.3f}  ({t['ideal_distance']:.3f})  {_line(t)}"
                for t in result["tracks"]
            ),
            f"  largest step {result['largest_step']:.3f}",
        ]

    return _answer_tracks(lambda: path.path(args.data_dir, args.stops, args.steps, **_only(args)), args, lines)


def cmd_radio(args) -> int:
    from musicrec.library import m3u
    from musicrec.serve import radio

    def lines(result: dict) -> list[str]:
        return [
            f"radio from {', '.join(result['seeds'])}  (each number is the distance from the seed it came from)",
            *(f"  {t['position']:2d}. {t['distance']:.3f}  {_line(t)}  <- {t['seed']}" for t in result["tracks"]),
        ]

    spread = tuple(_folders(args.no_repeat)) if args.window else ()
    files = [seed for seed in args.seeds if _is_audio_file(seed)]
    named = [seed for seed in args.seeds if seed not in files]
    seeds = [key for seed in named for key in (m3u.entries(seed) if _is_m3u(seed) else [seed])]
    ask = (args.data_dir, seeds, args.length, args.window, spread, files)
    return _answer_tracks(lambda: radio.radio(*ask, **_only(args)), args, lines)


def cmd_search(args) -> int:
    from musicrec.serve import tag_search

    def lines(result: dict) -> list[str]:
        return [
            f"tracks tagged {' + '.join(result['tags'])}  (each number is the tags' geometric mean probability)",
            *_track_lines(result["tracks"], "score"),
        ]

    words = " ".join(args.words)
    return _answer_tracks(lambda: tag_search.tag_search(args.data_dir, words, args.k, **_only(args)), args, lines)


def cmd_mixes(args) -> int:
    from musicrec.serve import mixes

    if args.mix is None:

        def show(result: dict) -> None:
            for m in result["mixes"]:
                print(f"  {m['mix']:2d}. {m['name']}  ({m['tracks']} tracks, {m['duration_s'] / 60:.0f} min)")
            print("  (musicrec mixes N shows mix N's tracks; --out writes it as an M3U file)")

        return _answer(lambda: mixes.listing(args.data_dir), args, show)

    def lines(result: dict) -> list[str]:
        return [
            f"mix {result['mix']}: {result['name']}  (each number is the distance from the track before it)",
            *_track_lines(result["tracks"], "step_distance"),
        ]

    return _answer_tracks(lambda: mixes.mix(args.data_dir, args.mix), args, lines)


def cmd_duplicates(args) -> int:
    from musicrec.serve import duplicates, export

    if args.out:  # a table for cleaning the library: CSV (spreadsheet-safe) or Parquet, '-' for standard output
        path, fmt = export.target(args.out, None if args.out != "-" else "csv")

        def written() -> dict:
            table = duplicates.grouped(args.data_dir)
            export.write(table, path, fmt)
            return {"recordings": int(table["recording"].nunique()), "files": len(table)}

        def said(result: dict) -> None:
            n = result["recordings"]
            print(
                f"{n} recording{'s' * (n != 1)} held by {result['files']} files -> {args.out} ({fmt})", file=sys.stderr
            )

        return _answer(written, args, said)

    def show(result: dict) -> None:
        for group in result["groups"]:
            print(f"{group['canonical']}  (kept; {len(group['files']) - 1} more of this recording)")
            for f in group["files"][1:]:
                print(
                    f"  {f['track_key']}: {100 * (1 - f['bit_error_rate']):.1f}% of the fingerprint's bits agree, "
                    f"{f['offset_s']:+.2f} s apart, over {f['overlap_s']:.0f} s"
                    if f["bit_error_rate"] is not None
                    else f"  {f['track_key']}: the same file's bytes"
                )
        n = len(result["groups"])
        print(f"{n} recording{'s' * (n != 1)} held by {result['files']} files" if n else result["note"])
        print("  (--out FILE.csv writes them one row a file, for cleaning the library)")

    return _answer(lambda: duplicates.listing(args.data_dir), args, show)


def _tag_vocabulary() -> str:
    from musicrec.index import descriptors

    tags = textwrap.fill(", ".join(descriptors.TAGS), width=100, initial_indent="  ", subsequent_indent="  ")
    aliases = ", ".join(f"{a!r} for {t!r}" for a, t in descriptors.ALIASES.items())
    return (
        f"the tags (the music-tagging network's 50; words that name none are said and left out):\n{tags}\n"
        + textwrap.fill(f"also understood: {aliases}", width=100, subsequent_indent="  ")
        + "\n\nA tag search: no model that maps free text to audio ships here."
    )


def _is_audio_file(seed: str) -> bool:
    from musicrec.analysis.audio import AUDIO_EXTENSIONS

    return os.path.splitext(seed)[1].lower() in AUDIO_EXTENSIONS and os.path.isfile(seed)


def _is_m3u(seed: str) -> bool:
    return seed.lower().endswith((".m3u", ".m3u8")) and os.path.isfile(seed)


def cmd_features(args) -> int:
    from musicrec.analysis import extract
    from musicrec.library import discover
    from musicrec.serve import export
    from musicrec.store import storage

    out = export.output_path(args.out)
    worklist = discover.scan(args.library, _folders(args.folders)).files
    started = time.monotonic()
    feats, quarantine = extract.extract(
        args.library,
        worklist,
        workers=args.workers,
        label="features",
        max_minutes=args.max_analysis_minutes,
        time_limit_s=args.file_time_limit,
    )
    storage.write_parquet(feats, out)
    quarantine_path = storage.write_parquet(quarantine, out.with_name(out.stem + ".quarantine.parquet"))
    print(
        f"{len(feats)} files, {feats['duration_s'].sum() / 3600:.2f} h of audio, {len(quarantine)} quarantined "
        f"({quarantine_path}), in {time.monotonic() - started:.0f} s -> {out}"
    )
    return 0


def cmd_export(args) -> int:

    from musicrec.serve import export
    from musicrec.store import storage

    path, fmt = export.target(args.out, args.format)
    current = storage.require_current(args.data_dir)
    tracks = storage.read_parquet(
        current / storage.TRACKS, columns=["track_key", "folder", "file", "title", "artist", "genre", "duration_s"]
    )
    table = tracks.merge(storage.read_parquet(current / storage.EMBEDDINGS), on="track_key")
    export.write(table, path, fmt)
    print(f"{len(table)} tracks, {table.shape[1] - 7} components -> {args.out} ({fmt})", file=sys.stderr)
    return 0


def cmd_rollback(args) -> int:
    from musicrec.store import storage

    current, previous = storage.rollback(args.data_dir)
    print(
        f"current index: runs/{current.name}"
        + (f" (was runs/{previous.name}; roll back again to undo)" if previous else "")
    )
    return 0


def cmd_demo_library(args) -> int:
    from musicrec import demo

    info = demo.make_library(args.dest, tracks_per_style=args.tracks)
    print(
        f"{info['tracks']} tracks in {info['styles']} styles, {info['broken_files']} broken file, "
        f"metadata: {info['metadata']} ({info['metadata_rows']} rows)"
    )
    return 0


def _add_run_parameters(run: argparse.ArgumentParser) -> None:
    """An option per run parameter that has a flag (declared in musicrec.settings.PARAMETERS); an option not
    given is left to the run's default. The DAG's params check the values and name a bad one."""
    defaults = settings.defaults()
    for p in settings.PARAMETERS:
        if p.flag is None:
            continue
        shown = defaults[p.name]
        default = "" if p.required_by_cli or shown is None or shown is False or shown == [] else f" (default: {shown})"
        option = {"dest": p.name, "default": None, "help": (p.plain_description() + default).replace("%", "%%")}
        if p.type == "boolean":
            option["action"] = "store_true"
        else:
            option |= {"type": _FLAG_TYPES[p.type], "required": p.required_by_cli, "choices": p.choices}
            option["metavar"] = None if p.choices else p.flag.removeprefix("--").replace("-", "_").upper()
        run.add_argument(p.flag, **option)


_FLAG_TYPES = {"string": str, "integer": int, "number": float, "array": lambda text: _folders(text)}


def _filter_options(command: argparse.ArgumentParser) -> None:
    """The filters every command that lists tracks takes: a genre, a tempo range, a key, tags, a loudness."""
    from musicrec.index import descriptors

    command.add_argument("--genre", help="only tracks of this genre")
    command.add_argument("--bpm", type=_as_argument(descriptors.parse_bpm), help="only tracks at this tempo (90-110)")
    command.add_argument("--key", type=_as_argument(descriptors.parse_key), help="only tracks in this key (A minor)")
    command.add_argument(
        "--tag",
        action="append",
        default=[],
        type=_as_argument(descriptors.parse_tag),
        help="only tracks with this tag (mellow, 'female vocalists'; again for more; `musicrec search -h` lists them)",
    )
    command.add_argument(
        "--loudness", type=_as_argument(descriptors.parse_loudness), help="only tracks this loud (-20..-12, in LUFS)"
    )


def _filters_said(args) -> list[str]:
    """The filters asked for, as a person would say them."""
    said = [f"genre {args.genre!r}"] if args.genre else []
    said += [f"tempo {args.bpm[0]:g}-{args.bpm[1]:g}"] if args.bpm else []
    said += [f"key {args.key}"] if args.key else []
    said += [f"tag {t!r}" for t in args.tag]
    said += [f"loudness {args.loudness[0]:g}..{args.loudness[1]:g} LUFS"] if args.loudness else []
    return said


def _only(args) -> dict:
    return {
        "genre": args.genre,
        "bpm": args.bpm,
        "in_key": args.key,
        "tags": tuple(args.tag),
        "loudness": args.loudness,
    }


def _track_list_options(command: argparse.ArgumentParser, spaced: bool) -> None:
    """The options of every command that answers with a list of tracks (playlist, path, radio)."""
    _filter_options(command)
    if spaced:
        command.add_argument("--window", type=int, default=0, help="no artist or album repeats within this many tracks")
        command.add_argument("--no-repeat", default="artist,album", help="what --window keeps apart (artist,album)")
    command.add_argument("--out", help="write an M3U file, paths relative to the library's root")
    command.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    command.add_argument("--json", action="store_true")


def _as_argument(parse):
    """A parser of a filter's text as argparse's type: its error is argparse's one-line usage error."""

    def parsed(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parsed


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="musicrec", description="Find tracks that sound like this one.")
    p.add_argument("-v", "--verbose", action="store_true", help="more detail, including Airflow's own logs")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the pipeline's DAG once, in-process, on the embedded default")
    _add_run_parameters(run)
    run.set_defaults(func=cmd_run)

    rec = sub.add_parser("recommend", help="tracks that sound like QUERY (a track key, or text in title/artist/file)")
    rec.add_argument("query")
    rec.add_argument("--k", type=_positive_int, default=10, help="how many neighbours (at least 1)")
    rec.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    rec.add_argument("--exclude-same", help="leave out neighbours by the same artist, album or both: artist,album")
    _filter_options(rec)
    rec.add_argument("--json", action="store_true")
    rec.set_defaults(func=cmd_recommend)

    sim = sub.add_parser("similar", help="tracks of the index that sound like FILE (which need not be in it)")
    sim.add_argument("file")
    sim.add_argument("--k", type=_positive_int, default=10)
    sim.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    sim.add_argument("--json", action="store_true")
    sim.set_defaults(func=cmd_similar)

    pl = sub.add_parser("playlist", help="a playlist that flows from SEED through near neighbours")
    pl.add_argument("seed", help="a track key, or text in title, artist or file name")
    pl.add_argument("--length", type=_positive_int, default=20)
    _track_list_options(pl, spaced=True)
    pl.set_defaults(func=cmd_playlist)

    walk = sub.add_parser("path", help="from one track to another (FROM [VIA ...] TO) through similar ones")
    walk.add_argument("stops", nargs="+", metavar="TRACK", help="a track key, or text in title, artist or file name")
    walk.add_argument("--steps", type=_positive_int, default=10, help="steps from the first track to the last")
    _track_list_options(walk, spaced=False)
    walk.set_defaults(func=cmd_path)

    air = sub.add_parser("radio", help="tracks near several seeds (track keys, text, audio or M3U files), taking turns")
    air.add_argument(
        "seeds", nargs="+", metavar="SEED", help="a track key, text in a title or artist, an audio file, an M3U"
    )
    air.add_argument("--length", type=_positive_int, default=20)
    _track_list_options(air, spaced=True)
    air.set_defaults(func=cmd_radio)

    find = sub.add_parser(
        "search",
        help="tracks by the tags words name: musicrec search mellow female vocals",
        epilog=_tag_vocabulary(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    find.add_argument("words", nargs="+", metavar="WORD", help="tags, as words: mellow, 'female vocals', 80s, ...")
    find.add_argument("--k", type=_positive_int, default=20, help="how many tracks")
    _track_list_options(find, spaced=False)
    find.set_defaults(func=cmd_search)

    mixed = sub.add_parser(
        "mixes", help="the index's mixes (clusters of the library, named by their tags); one's tracks"
    )
    mixed.add_argument("mix", nargs="?", help="a mix's number, or a word of its name: its tracks, in order")
    mixed.add_argument("--out", help="write the mix as an M3U file, paths relative to the library's root")
    mixed.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    mixed.add_argument("--json", action="store_true")
    mixed.set_defaults(func=cmd_mixes)

    dup = sub.add_parser("duplicates", help="the recordings the library holds more than once, with the evidence")
    written = dup.add_mutually_exclusive_group()
    written.add_argument("--out", help="write them one row a file (.csv or .parquet; '-': CSV to standard output)")
    written.add_argument("--json", action="store_true")
    dup.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    dup.set_defaults(func=cmd_duplicates)

    feat = sub.add_parser("features", help="extract audio features of a folder to Parquet (no Airflow)")
    feat.add_argument("--library", required=True)
    feat.add_argument("--out", required=True)
    feat.add_argument("--folders")
    feat.add_argument("--workers", type=int)
    feat.add_argument(
        "--max-analysis-minutes", type=float, default=30.0, help="analyse longer tracks on their first minutes"
    )
    feat.add_argument(
        "--file-time-limit",
        type=float,
        default=ANALYSIS_LIMIT_S,
        metavar="SECONDS",
        help=f"stop and quarantine a file whose decoding and analysis take longer (default {ANALYSIS_LIMIT_S:g})",
    )
    feat.set_defaults(func=cmd_features)

    exp = sub.add_parser("export", help="the reduced features with folder and file names, as CSV or Parquet")
    exp.add_argument("--out", required=True, help="a .csv or .parquet file, or - for standard output")
    exp.add_argument("--format", choices=["csv", "parquet"])
    exp.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    exp.set_defaults(func=cmd_export)

    back = sub.add_parser("rollback", help="make the index before the current one current again")
    back.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    back.set_defaults(func=cmd_rollback)

    demo = sub.add_parser("demo-library", help="synthesize a demo library with a dirty metadata CSV")
    demo.add_argument("dest")
    demo.add_argument("--tracks", type=int, default=6, help="tracks per style")
    demo.set_defaults(func=cmd_demo_library)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    show_progress(args.verbose)
    try:
        return args.func(args)
    except BrokenPipeError:  # the reader went away (`| head`): nothing more to say, as for any Unix filter
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that exiting flushes nowhere
        return 128 + signal.SIGPIPE
    except Exception as exc:  # a read-only data dir, a full disk, refused credentials: one line, no traceback
        failure = explained(exc)
        if failure is None and not isinstance(exc, (FileNotFoundError, ValueError)):
            raise
        print(f"error: {failure or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
