"""What a track is like, read from its features: its key and mode, its tempo, loudness and energy, and tags.

The key is the Krumhansl-Kessler estimate: the track's mean chroma (librosa's, C first) correlated with the
major and minor key profiles in each of the twelve tonics; the best is the key, and how far it stands
above the next best is its confidence (0 when two keys fit alike). The tempo is the feature `tempo_bpm`
(librosa's beat tracker over the onset strength), with its confidence. The tags are the music-tagging
network's 50 (`musicrec.analysis.musicnn.TAGS`), each a probability. Their scales differ widely (on a
library of game soundtracks the likeliest mellow track reads 0.09, the likeliest electronic one 0.69), so a
track is tagged `mellow` when the network finds it at least TAG_LIFT times as mellow as the library's
average track, and the probability is at least TAG_FLOOR; its tags, as shown, are the (at most SHOWN_TAGS)
it is tagged with, the most above the average first. Words name tags as listeners write them: "female
vocals", "hip hop", "calm".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from musicrec.analysis import features, musicnn

NOTES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
CHROMA = [f"chroma_{i:02d}_mean" for i in range(1, 13)]
TEMPO = "tempo_bpm"
# Krumhansl and Kessler's probe-tone ratings (1982), tonic first.
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
KEYS = [f"{n} major" for n in NOTES] + [f"{n} minor" for n in NOTES]


def _profiles() -> np.ndarray:
    """(24, 12): each key's profile over the pitch classes, standardized (so a dot product is a correlation)."""
    rows = [np.roll(MAJOR, t) for t in range(12)] + [np.roll(MINOR, t) for t in range(12)]
    p = np.array(rows)
    return (p - p.mean(axis=1, keepdims=True)) / p.std(axis=1, keepdims=True)


def keys(chroma: np.ndarray) -> tuple[list[str | None], np.ndarray]:
    """Each row's key ("A minor") and its confidence, from (tracks, 12) mean chroma; None for a silent row."""
    c = np.asarray(chroma, dtype=float)
    spread = c.std(axis=1, keepdims=True)
    z = (c - c.mean(axis=1, keepdims=True)) / np.where(spread > 0, spread, 1.0)
    fit = z @ _profiles().T / 12  # (tracks, 24) correlations
    ranked = np.sort(fit, axis=1)
    best = np.argmax(fit, axis=1)
    named = [KEYS[b] if s > 0 else None for b, s in zip(best, spread[:, 0], strict=True)]
    return named, np.where(spread[:, 0] > 0, ranked[:, -1] - ranked[:, -2], 0.0)


def describe(tracks: pd.DataFrame) -> pd.DataFrame:
    """`key`, `key_confidence` and `bpm` for a table with the chroma means and the tempo."""
    named, confidence = keys(tracks[CHROMA].to_numpy())
    return pd.DataFrame({"key": named, "key_confidence": confidence.round(3), "bpm": tracks[TEMPO].round(1)})


def parse_key(text: str) -> str:
    """ "a minor", "F# Major", "Bb minor" as a key of KEYS; ValueError naming the text otherwise."""
    words = text.strip().split()
    flats = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}
    if len(words) == 2:
        note = words[0][0].upper() + words[0][1:].lower().replace("♯", "#").replace("♭", "b")
        name = f"{flats.get(note, note)} {words[1].lower()}"
        if name in KEYS:
            return name
    raise ValueError(f"{text!r} is not a key: say a note and major or minor, e.g. 'A minor' or 'F# major'")


def parse_bpm(text: str) -> tuple[float, float]:
    """ "90-110" (or "120", for 118-122) as a range of tempi; ValueError naming the text otherwise."""
    try:
        low, _, high = text.partition("-")
        bounds = (float(low), float(high)) if high else (float(low) - 2, float(low) + 2)
    except ValueError:
        raise ValueError(f"{text!r} is not a tempo range: say e.g. 90-110 (beats a minute)") from None
    if not 0 < bounds[0] <= bounds[1]:
        raise ValueError(f"{text!r} is not a tempo range: the low end first, both above 0")
    return bounds


def parse_loudness(text: str) -> tuple[float, float]:
    """ "-20..-12" (LUFS; or "-14", for -15.5..-12.5) as a range of loudness; ValueError naming the text otherwise."""
    low, dots, high = text.replace(" ", "").partition("..")
    try:
        bounds = (float(low), float(high)) if dots else (float(low) - 1.5, float(low) + 1.5)
    except ValueError:
        raise ValueError(f"{text!r} is not a loudness range: say e.g. -20..-12 (LUFS)") from None
    if bounds[0] > bounds[1]:
        raise ValueError(f"{text!r} is not a loudness range: the quieter end first, e.g. -20..-12")
    return bounds


TAG_LIFT = 1.5
TAG_FLOOR = 0.05
SHOWN_TAGS = 3
TAGS = {t.lower(): features.tag_column(t) for t in musicnn.TAGS}  # the vocabulary, as written in answers
# Other ways people write a tag, and the tag they mean.
ALIASES = {
    "female vocals": "female vocalists",
    "female vocal": "female vocalist",
    "female voice": "female vocalists",
    "male vocals": "male vocalists",
    "male vocal": "male vocalists",
    "male voice": "male vocalists",
    "hip hop": "hip-hop",
    "hiphop": "hip-hop",
    "r&b": "rnb",
    "calm": "mellow",
    "relaxing": "chillout",
    "sadness": "sad",
    "prog rock": "progressive rock",
    "progressive": "progressive rock",
}


def parse_tags(text: str) -> tuple[list[str], list[str]]:
    """The tags the words of `text` name ("mellow female vocals" -> ["mellow", "female vocalists"]), longest
    phrase first, and the words that name none."""
    words = text.lower().replace(",", " ").split()
    named, unknown, i = [], [], 0
    while i < len(words):
        for n in (3, 2, 1):
            phrase = " ".join(words[i : i + n])
            tag = ALIASES.get(phrase, phrase)
            if len(words) - i >= n and tag in TAGS:
                if tag not in named:
                    named.append(tag)
                i += n
                break
        else:
            unknown.append(words[i])
            i += 1
    return named, unknown


def parse_tag(text: str) -> str:
    """One tag, as the filters take it ("Mellow", "female vocals"); ValueError naming the closest tags
    otherwise."""
    named, unknown = parse_tags(text)
    if len(named) == 1 and not unknown:
        return named[0]
    close = ", ".join(closest_tags(text))
    raise ValueError(f"{text!r} is not one of the 50 tags (closest: {close}); `musicrec search --help` lists them")


def closest_tags(word: str, n: int = 3) -> list[str]:
    """The tags spelt most like `word` (rapidfuzz's WRatio), closest first."""
    from rapidfuzz import process

    return [match for match, _, _ in process.extract(word.lower(), list(TAGS), limit=n)]


def tag_probabilities(tracks: pd.DataFrame) -> pd.DataFrame:
    """(tracks, 50) tag probabilities, columns named by tag ("female vocalists"); empty columns when the
    index was built without them."""
    present = [t for t, column in TAGS.items() if column in tracks.columns]
    return tracks[[TAGS[t] for t in present]].set_axis(present, axis=1).astype(float)


def lift(probabilities: pd.DataFrame) -> pd.DataFrame:
    """Each probability over its tag's mean in the library: how much more the track is it than the average."""
    return probabilities / probabilities.mean().clip(lower=1e-9)


def tagged(probabilities: pd.DataFrame) -> pd.DataFrame:
    """Whether each track is tagged with each tag (TAG_LIFT times the library's average, and TAG_FLOOR)."""
    return (lift(probabilities) >= TAG_LIFT) & (probabilities >= TAG_FLOOR)


def top_tags(probabilities: pd.DataFrame) -> list[list[str]]:
    """Each track's tags: those it is tagged with, the most above the library's average first, at most SHOWN_TAGS."""
    ranked = lift(probabilities).where(tagged(probabilities)).to_numpy()
    names = np.array(probabilities.columns)
    order = np.argsort(-np.nan_to_num(ranked, nan=-1.0), axis=1)[:, :SHOWN_TAGS]
    return [names[row][np.isfinite(ranked[i, row])].tolist() for i, row in enumerate(order)]
