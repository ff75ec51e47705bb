"""Every runtime dependency of musicrec with its licence, and a failure on any that would not let anyone use the
project, commercially too, as a service or shipped: network copyleft (AGPL, SSPL), non-commercial terms, or no
licence stated at all. GPL libraries (mutagen) are allowed as imported, unmodified libraries and listed apart:
whoever ships an image with them ships GPL code. Test and benchmark extras are not the runtime and are not
checked. The shipped model's licence is checked too (musicnn's weights: ISC).

    python tools/licences.py          # the table, then OK or the refusals; exit 1 on a refusal
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

# Licences that allow use and shipping as a library under Apache-2.0 (LGPL: linked or imported, unmodified).
ALLOWED = re.compile(
    r"apache|\bmit\b|bsd|isc|psf|python software foundation|mpl|mozilla public|lgpl|lesser general|zlib|"
    r"unlicense|public domain|cc0|hpnd|historical permission|artistic|0bsd|boost|bsl-1\.0|mit-cmu|unicode",
    re.IGNORECASE,
)
REFUSED = re.compile(r"affero|agpl|sspl|server side public|non-?commercial|cc-by-nc|\bnc\b", re.IGNORECASE)
COPYLEFT = re.compile(r"(?<![a-z])gpl|general public license", re.IGNORECASE)
# What the packages' own metadata leaves unsaid, read from their licence files and project pages.
STATED_ELSEWHERE = {
    "musicrec": "Apache-2.0",
}
# What the image ships besides the core: the CeleryExecutor deployment.
DEPLOYED_EXTRAS = ("celery",)
MODEL_LICENCE = Path(__file__).resolve().parents[1] / "include/musicrec/analysis/network/LICENSE.musicnn"
ISC_TEXT = "Permission to use, copy, modify, and/or distribute this software for any purpose with or without fee"


def licence_of(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    name = meta["Name"].lower()
    if name in STATED_ELSEWHERE:
        return STATED_ELSEWHERE[name]
    expression = meta.get("License-Expression")
    if expression:
        return expression
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    classifiers = [c for c in classifiers if c != "OSI Approved"]
    if classifiers:
        return "; ".join(classifiers)
    text = (meta.get("License") or "").strip().splitlines()
    return text[0][:80] if text else ""


def runtime_distributions(root: str = "musicrec", extras: tuple[str, ...] = DEPLOYED_EXTRAS) -> dict:
    """The installed distributions that `root` (with `extras`) needs at run time, and theirs, by normalized name.
    A distribution asked for again with other extras is followed again for those (fastapi[standard])."""
    found: dict[str, metadata.Distribution] = {}
    followed: set[tuple[str, str]] = set()
    todo = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        new = [extra for extra in ("", *wanted) if (key, extra) not in followed]
        if not new:
            continue
        try:
            dist = found.get(key) or metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a requirement for another platform or Python
        found[key] = dist
        followed.update((key, extra) for extra in new)
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker and not any(requirement.marker.evaluate({"extra": extra}) for extra in new):
                continue
            todo.append((requirement.name, tuple(requirement.extras)))
    return found


def refusal(licence: str) -> str | None:
    if not licence:
        return "no licence stated"
    if REFUSED.search(licence):
        return "network copyleft or non-commercial terms"
    if not ALLOWED.search(licence) and not COPYLEFT.search(licence):
        return "not a licence known to allow this use"
    return None


def model_licence() -> str:
    text = MODEL_LICENCE.read_text() if MODEL_LICENCE.exists() else ""
    return "ISC" if ISC_TEXT in " ".join(text.split()) else ""


def main() -> int:
    rows = sorted((dist.metadata["Name"], dist.version, licence_of(dist)) for dist in runtime_distributions().values())
    rows.append(("musicnn model weights", "", model_licence()))
    width = max(len(name) for name, _, _ in rows)
    refused = []
    for name, version, licence in rows:
        why = refusal(licence)
        print(f"{name:<{width}}  {version:<12} {licence or '?'}" + (f"   REFUSED: {why}" if why else ""))
        if why:
            refused.append(name)
    copyleft = [name for name, _, licence in rows if COPYLEFT.search(licence) and not ALLOWED.search(licence)]
    print(f"\n{len(rows)} runtime components; " + (f"refused: {', '.join(refused)}" if refused else "all allowed"))
    if copyleft:
        print(f"GPL only, used as unmodified libraries: {', '.join(copyleft)}")
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
