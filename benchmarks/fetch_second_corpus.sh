#!/usr/bin/env bash
# A second corpus for the evaluation protocol (`evaluate.py --second`): free game soundtracks from Debian's
# packages that the dev corpus does not hold, so that a choice made on the dev corpus is checked on music
# it was not made on. Lays out DEST/<soundtrack>/<file>, the dev corpus's layout; needs apt-get and dpkg,
# downloads about 400 MB once and reuses DEST/.debs after.
# Usage: benchmarks/fetch_second_corpus.sh [DEST]        (default: ./second-corpus)
set -euo pipefail
dest=$(realpath -m "${1:-second-corpus}")
pkgs=(warzone2100-music wesnoth-1.16-music blobwars-data openclonk-data)
mkdir -p "$dest/.debs" "$dest/.x"
cd "$dest/.debs"
missing=()
for p in "${pkgs[@]}"; do ls "${p}"_*.deb >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  apt-get download "${missing[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get download "${missing[@]}" >/dev/null; }
fi
for p in "${pkgs[@]}"; do
  x="$dest/.x/$p"
  [ -d "$x" ] || { mkdir -p "$x"; dpkg -x "${p}"_*.deb "$x"; }
  mkdir -p "$dest/$p"
  find "$x" -type f -ipath '*music*' \( -iname '*.ogg' -o -iname '*.mp3' -o -iname '*.flac' -o -iname '*.opus' -o -iname '*.wav' \) -print0 |
    while IFS= read -r -d '' f; do ln -sf "$f" "$dest/$p/$(basename "$f")"; done
  # blobwars names its Ogg files without an extension
  find "$x" -type f -ipath '*music*' ! -name '*.*' -print0 |
    while IFS= read -r -d '' f; do if [ "$(head -c 4 "$f")" = OggS ]; then ln -sf "$f" "$dest/$p/$(basename "$f").ogg"; fi; done
done
for p in "${pkgs[@]}"; do printf '%-20s %4d files\n' "$p" "$(find "$dest/$p" -maxdepth 1 -type l | wc -l)"; done
