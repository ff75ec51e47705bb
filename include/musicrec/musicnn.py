"""musicnn, a music-tagging network, run in numpy as an audio embedding.

musicnn (Pons and Serra, 2019; the `MSD_musicnn` model) was trained to tag 3-s log-mel patches with the
50 tags most used in the Million Song Dataset (rock, electronic, ambient, female vocalists, ...). What it
learnt to tell apart (instruments, production, style) is what "sounds like" means to a listener, and its
hidden layers carry it as a vector: the three mid-end layers (192 features) averaged over a patch's frames.
A track's embedding is their mean and standard deviation over `PATCHES` patches spread evenly over it.

The weights (`models/msd_musicnn.npz`, 790k parameters) are those the musicnn 0.1.0 wheel ships,
converted by `benchmarks/musicnn_weights.py` (ISC licence: `models/LICENSE.musicnn`); a test holds this
network to musicnn's own TensorFlow graph on the same inputs.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from musicrec import filterbanks

WEIGHTS = Path(__file__).resolve().parent / "models" / "msd_musicnn.npz"

# The input the network was trained on: librosa's mel spectrogram at 16 kHz, 96 bands, log10(1 + 10^4 x).
SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # 3 s
# Patches analysed per track, spread evenly over it: precision rises up to about 12 and the network's
# cost with it (25-40 ms a patch on one core), so a track costs about as much as the rest of its analysis.
PATCHES = 12
ROWS = 192  # the mid-end's features
BN_EPSILON = 1e-3  # TensorFlow's default for the batch normalisation layers

# (convolution, its batch normalisation) in the graph's order: the front-end's timbral filters (7 frames
# by 38 and 67 mel bands), its temporal filters (128, 64 and 32 frames), then the mid-end's three layers.
TIMBRAL = (("conv2d", "batch_normalization_1"), ("conv2d_1", "batch_normalization_2"))
TEMPORAL = (("conv2d_2", "batch_normalization_3"), ("conv2d_3", "batch_normalization_4"))
TEMPORAL += (("conv2d_4", "batch_normalization_5"),)
MID_LAYERS = (("conv2d_5", "batch_normalization_6"), ("conv2d_6", "batch_normalization_7"))
MID_LAYERS += (("conv2d_7", "batch_normalization_8"),)


@functools.cache
def _weights() -> dict[str, np.ndarray]:
    with np.load(WEIGHTS) as saved:
        return {name: saved[name] for name in saved.files}


@functools.cache
def _mel() -> tuple[np.ndarray, np.ndarray]:
    """(periodic Hann window, mel filterbank transposed to (bins, bands)), as librosa computes them."""
    n = np.arange(N_FFT)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)).astype(np.float32)
    mel, _ = filterbanks.load(SAMPLE_RATE, N_FFT, N_MELS)
    return window, np.ascontiguousarray(mel.T)


def patch_starts(n_frames: int, patches: int = PATCHES) -> np.ndarray:
    """First frames of the patches: whole 3-s patches, end to end, `patches` of them spread evenly when the
    track holds more; one (padded with silence) when it holds less than one."""
    starts = np.arange(0, max(n_frames - PATCH_FRAMES, 0) + 1, PATCH_FRAMES)
    if starts.size > patches:
        starts = starts[np.linspace(0, starts.size - 1, patches).round().astype(int)]
    return starts


def log_mel_patches(y16: np.ndarray, patches: int = PATCHES) -> np.ndarray:
    """(patches, PATCH_FRAMES, N_MELS): the network's input, from a mono signal at 16 kHz.

    Only the patches' frames are computed, each as a centred STFT frame of the whole signal would be."""
    window, mel = _mel()
    n_frames = 1 + y16.size // HOP
    out = []
    for start in patch_starts(n_frames, patches):
        first = start * HOP - N_FFT // 2
        segment = np.zeros((PATCH_FRAMES - 1) * HOP + N_FFT, dtype=np.float32)
        lo, hi = max(first, 0), min(first + segment.size, y16.size)
        if hi > lo:
            segment[lo - first : hi - first] = y16[lo:hi]
        frames = sliding_window_view(segment, N_FFT)[::HOP]
        power = np.square(np.abs(np.fft.rfft(frames * window, axis=1))).astype(np.float32)
        out.append(np.log10(1.0 + 10000.0 * (power @ mel)))
    return np.stack(out)


def _affine(bn: str) -> tuple[np.ndarray, np.ndarray]:
    """A batch normalisation layer at inference as x * scale + shift."""
    w = _weights()
    scale = w[f"{bn}/gamma"] / np.sqrt(w[f"{bn}/moving_variance"] + BN_EPSILON)
    return scale, w[f"{bn}/beta"] - w[f"{bn}/moving_mean"] * scale


def _conv_pooled(windows: np.ndarray, conv: str, bn: str) -> np.ndarray:
    """Convolution (as one matrix product over the windows, (frames, positions, taps)), ReLU, batch
    normalisation, then the maximum over the positions (the mel bands).

    Batch normalisation and ReLU are monotone per filter, so the maximum is taken first, of the raw
    products: their maximum where the filter's scale is positive, their minimum where it is negative.
    """
    w = _weights()
    kernel = w[f"{conv}/kernel"]
    frames, positions, taps = windows.shape
    z = (windows.reshape(-1, taps) @ kernel.reshape(taps, -1)).reshape(frames, positions, -1)
    scale, shift = _affine(bn)
    pooled = np.where(scale >= 0, z.max(axis=1), z.min(axis=1))
    return np.maximum(pooled + w[f"{conv}/bias"], 0.0) * scale + shift


def _front_end(x: np.ndarray) -> np.ndarray:
    """(frames, 561) from one normalised patch (frames, mel bands)."""
    padded = np.pad(x, ((3, 3), (0, 0)))
    out = []
    for conv, bn in TIMBRAL:
        height, width = _weights()[f"{conv}/kernel"].shape[:2]
        windows = sliding_window_view(padded, (height, width))  # (frames, positions, height, width)
        out.append(_conv_pooled(windows.reshape(*windows.shape[:2], -1), conv, bn))
    for conv, bn in TEMPORAL:
        height = _weights()[f"{conv}/kernel"].shape[0]
        before = (height - 1) // 2  # TensorFlow's "same" padding
        windows = sliding_window_view(np.pad(x, ((before, height - 1 - before), (0, 0))), height, axis=0)
        out.append(_conv_pooled(windows, conv, bn))
    return np.concatenate(out, axis=1)


def _mid_end(front: np.ndarray) -> np.ndarray:
    """(frames, 192): three convolutions across all features, 7 frames wide, the last two residual."""
    w = _weights()
    h, out = front, []
    for conv, bn in MID_LAYERS:
        windows = sliding_window_view(np.pad(h, ((3, 3), (0, 0))), 7, axis=0)  # (frames, features, 7)
        taps = np.ascontiguousarray(windows.transpose(0, 2, 1)).reshape(h.shape[0], -1)
        scale, shift = _affine(bn)
        y = np.maximum(taps @ w[f"{conv}/kernel"].reshape(taps.shape[1], -1) + w[f"{conv}/bias"], 0.0)
        y = y * scale + shift
        h = y if not out else y + h
        out.append(h)
    return np.concatenate(out, axis=1)


def features(patches: np.ndarray) -> np.ndarray:
    """(patches, frames, 753): the front-end's and mid-end's features of each frame (musicnn's `mean_pool`
    and `max_pool` are their mean and maximum over the frames)."""
    scale, shift = _affine("batch_normalization")
    out = []
    for patch in patches:
        front = _front_end(patch * scale[0] + shift[0])
        out.append(np.concatenate([front, _mid_end(front)], axis=1))
    return np.stack(out).astype(np.float32)


def embed(y: np.ndarray, sr: int, patches: int = PATCHES) -> np.ndarray:
    """(2 * ROWS,) for a mono signal at `sr`: the mid-end's features averaged over each patch, then their
    mean and standard deviation over the patches, interleaved (feature 1's mean, its std, feature 2's ...)."""
    import soxr

    y16 = y if sr == SAMPLE_RATE else soxr.resample(y, sr, SAMPLE_RATE).astype(np.float32)
    per_patch = features(log_mel_patches(y16, patches))[:, :, -ROWS:].mean(axis=1)
    return np.column_stack([per_patch.mean(axis=0), per_patch.std(axis=0)]).ravel().astype(np.float64)
