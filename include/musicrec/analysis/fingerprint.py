"""Acoustic fingerprints: what tells two files of the same recording from two recordings that sound alike.

Every 23 ms of the track's start gives a 32-bit sub-fingerprint, after Haitsma and Kalker (2002): the
energy of 33 bands spaced evenly in log frequency from 300 to 2,000 Hz, over a 186-ms frame, and for each
pair of neighbouring bands whether their difference grew or shrank since the frame before. The frames
overlap by seven eighths so that a copy trimmed by any amount still finds frames within 12 ms of its own;
they are taken from the signal resampled to 5,512 Hz, which holds the bands and costs a sixteenth of the
analysis's own rate. The signs survive what
copies of a recording go through (a lossy encoding, another sample rate, a gain, a fade at the ends); a
different performance, a cover, a stretched or transposed version, or another track on the same theme
gives bits that agree no more than chance does (about half).

Two fingerprints are compared aligned: the offsets at which most sub-fingerprints are exactly equal are
tried (a copy trimmed at its start is shifted), and at each the share of differing bits over the overlap
(the bit error rate) is measured; the lowest is the pair's.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

BANDS = 33
LOW_HZ, HIGH_HZ = 300.0, 2000.0
SECONDS = 120.0  # the stretch of each track's start that is fingerprinted: enough to tell, bounded in size
RATE = 5512
FRAME = 1024  # samples at RATE: 186 ms
HOP = 128  # 23 ms
BLOCK_FRAMES = 256
OFFSETS_TRIED = 3
# A sub-fingerprint this common in a track (silence, a held chord) says nothing about where it lies.
COMMON = 8


def of_signal(y: np.ndarray, sr: int) -> np.ndarray:
    """The sub-fingerprints (uint32) of a mono signal's first SECONDS."""
    import soxr

    start = y[: int(SECONDS * sr) + FRAME * sr // RATE]
    x = soxr.resample(start, sr, RATE).astype(np.float32)[: int(SECONDS * RATE)]
    if x.size < FRAME + HOP:
        x = np.pad(x, (0, FRAME + HOP - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP]
    window = np.hanning(FRAME).astype(np.float32)
    energies = np.empty((frames.shape[0], BANDS), dtype=np.float64)
    for first in range(0, frames.shape[0], BLOCK_FRAMES):  # a block's spectra at a time: a few MB, not a hundred
        block = frames[first : first + BLOCK_FRAMES]
        energies[first : first + block.shape[0]] = np.square(np.abs(np.fft.rfft(block * window, axis=1))) @ _bands()
    return sub_fingerprints(energies)


@functools.cache
def _bands() -> np.ndarray:
    return band_matrix(np.fft.rfftfreq(FRAME, 1.0 / RATE))


def band_matrix(freq: np.ndarray) -> np.ndarray:
    """(bins, BANDS): which STFT bins (by frequency) sum into each band."""
    edges = np.geomspace(LOW_HZ, HIGH_HZ, BANDS + 1)
    band = np.searchsorted(edges, freq, side="right") - 1
    matrix = np.zeros((freq.size, BANDS), dtype=np.float32)
    inside = (band >= 0) & (band < BANDS)
    matrix[np.flatnonzero(inside), band[inside]] = 1.0
    return matrix


def sub_fingerprints(energies: np.ndarray) -> np.ndarray:
    """(frames - 1,) uint32 from (frames, BANDS) band energies: bit m set where the difference between bands
    m and m + 1 grew since the frame before."""
    difference = energies[:, :-1] - energies[:, 1:]
    bits = np.diff(difference, axis=0) > 0
    return np.packbits(bits, axis=1, bitorder="little").view("<u4")[:, 0].copy()


class Match(NamedTuple):
    bit_error_rate: float  # over the overlap, at the best offset: 0 for the same samples, about 0.5 for unrelated
    offset: int  # frames of `b` before the frame aligned with `a`'s first (negative: `a` starts later)
    overlap: int  # frames compared


def match(a: np.ndarray, b: np.ndarray, max_offset: int) -> Match:
    """The best alignment of two fingerprints, at most `max_offset` frames apart (a Match with a rate of 1.0
    and no overlap where none lines up)."""
    best = Match(1.0, 0, 0)
    if not a.size or not b.size:  # a file whose fingerprint could not be taken
        return best
    for offset in _likely_offsets(a, b, max_offset):
        x, y = (a, b[offset:]) if offset >= 0 else (a[-offset:], b)
        n = min(x.size, y.size)
        if n == 0:
            continue
        rate = float(np.bitwise_count(x[:n] ^ y[:n]).sum()) / (32 * n)
        if rate < best.bit_error_rate:
            best = Match(rate, offset, n)
    return best


def _likely_offsets(a: np.ndarray, b: np.ndarray, max_offset: int) -> list[int]:
    """The offsets at which most sub-fingerprints of `a` and `b` are equal (and 0, the offset of untrimmed
    copies), commonest first."""
    values, counts = np.unique(b, return_counts=True)
    b_rare = np.isin(b, values[counts <= COMMON])
    order = np.flatnonzero(b_rare)[np.argsort(b[b_rare], kind="stable")]
    sorted_b = b[order]
    first, stop = np.searchsorted(sorted_b, a, "left"), np.searchsorted(sorted_b, a, "right")
    hits = stop - first
    if not hits.sum():
        return [0]
    a_rows = np.repeat(np.arange(a.size), hits)
    # for each hit, its place in sorted_b: each a-frame's run of equal values, one after the other
    run_starts = np.repeat(first - np.cumsum(hits) + hits, hits)
    b_rows = order[run_starts + np.arange(a_rows.size)]
    offsets = b_rows - a_rows
    offsets = offsets[np.abs(offsets) <= max_offset]
    found, votes = np.unique(offsets, return_counts=True)
    likely = found[np.argsort(-votes, kind="stable")][:OFFSETS_TRIED].tolist()
    return likely + ([0] if 0 not in likely else [])
