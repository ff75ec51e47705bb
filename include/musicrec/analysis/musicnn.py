"""musicnn, a music-tagging network, as an audio embedding (through ONNX Runtime).

musicnn (Pons and Serra, 2019; the `MSD_musicnn` model) was trained to tag 3-s log-mel patches with the
50 tags most used in the Million Song Dataset (rock, electronic, ambient, female vocalists, ...). What it
learnt to tell apart (instruments, production, style) is what "sounds like" means to a listener, and its
hidden layers carry it as a vector: the three mid-end layers (192 features) averaged over a patch's frames.
A track's embedding is their mean and standard deviation over `PATCHES` patches spread evenly over it.
The network's own output, the probability of each of its 50 tags (`TAGS`), averaged over the same patches,
says what the track is like in words: its genres, moods, instruments, voices and decades.

The model (`network/msd_musicnn.onnx`) is the network the musicnn 0.1.0 wheel ships, built by musicnn's
own code and converted by `tools/musicnn_model.py` (ISC licence: `network/LICENSE.musicnn`); a test
holds it to musicnn's TensorFlow graph on the same inputs.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from musicrec.analysis import audio, filterbanks

NETWORK = Path(__file__).resolve().parent / "network" / "msd_musicnn.onnx"

# The input the network was trained on: librosa's mel spectrogram at 16 kHz, 96 bands, log10(1 + 10^4 x).
SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # 3 s
# Patches analysed per track, spread evenly over it. Precision on the dev corpus rises up to about 8 and
# stays level up to 16, 6 within 0.015 of it (research/EXPLORED.md); at about 16 ms a patch on one core,
# 6 is what keeps extraction within its budget.
PATCHES = 6
ROWS = 192  # the mid-end's features: the last of the 753 the model gives for each frame
# The Million Song Dataset's 50 most used tags, the network's outputs in order (musicnn's MSD_LABELS).
TAGS = [
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock",
    "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow",
    "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock",
    "ambient", "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
    "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb",
    "indie pop", "sad", "House", "happy",
]  # fmt: skip
RESAMPLE_MARGIN = 1024  # samples (at 16 kHz) around a patch's stretch, where the resampler's filter settles


@functools.cache
def _session(pid: int):
    """The model's inference session in this process (one per process: a session is not carried into a
    forked child), on one thread, as each extraction process uses one core."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(NETWORK), options, providers=["CPUExecutionProvider"])


def features(patches: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean_pool, max_pool, taggram): every layer's features up to the mid-end, averaged and maximised over
    each patch's frames, as musicnn's extractor names them, each (patches, 753); and each patch's tag
    probabilities, (patches, 50).

    One patch a run: a batch is no faster here, and its intermediate arrays, kept by the runtime's memory
    arena, would cost a worker 250 MB more."""
    session = _session(os.getpid())
    runs = [session.run(None, {"log_mel:0": patch[np.newaxis].astype(np.float32)}) for patch in patches]
    return tuple(np.concatenate([r[i] for r in runs]) for i in range(3))


@functools.cache
def _mel() -> tuple[np.ndarray, np.ndarray]:
    """(periodic Hann window, mel filterbank transposed to (bins, bands)), as librosa computes them."""
    n = np.arange(N_FFT)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)).astype(np.float32)
    mel = filterbanks.load(SAMPLE_RATE, N_FFT, N_MELS).mel
    return window, np.ascontiguousarray(mel.T)


def patch_starts(n_frames: int, patches: int = PATCHES) -> np.ndarray:
    """First frames of the patches: whole 3-s patches, end to end, `patches` of them spread evenly when the
    track holds more; one (padded with silence) when it holds less than one."""
    starts = np.arange(0, max(n_frames - PATCH_FRAMES, 0) + 1, PATCH_FRAMES)
    if starts.size > patches:
        starts = starts[np.linspace(0, starts.size - 1, patches).round().astype(int)]
    return starts


def _stretch(y: np.ndarray, sr: int, first: int, length: int) -> np.ndarray:
    """`length` samples of y at 16 kHz from sample `first` (at 16 kHz; zeros outside the signal).

    Only the stretch is resampled, with a margin, from an input sample that falls exactly on an output
    sample: it gives what resampling the whole track would."""
    if sr == SAMPLE_RATE:
        return audio.padded_slice(y, first, first + length)
    import soxr

    common = math.gcd(sr, SAMPLE_RATE)  # every sr // common input samples, an output sample falls on one
    step_in, step_out = sr // common, SAMPLE_RATE // common
    blocks = (first - RESAMPLE_MARGIN) // step_out
    lo = blocks * step_in
    hi = lo + int(np.ceil((first + length + RESAMPLE_MARGIN - blocks * step_out) * sr / SAMPLE_RATE))
    out = soxr.resample(audio.padded_slice(y, lo, hi), sr, SAMPLE_RATE)
    offset = first - blocks * step_out
    return out[offset : offset + length].astype(np.float32)


def log_mel_patches(y: np.ndarray, sr: int, patches: int = PATCHES) -> np.ndarray:
    """(patches, PATCH_FRAMES, N_MELS): the network's input, from a mono signal at `sr`.

    Only the patches' frames are computed, each as a centred STFT frame of the whole signal at 16 kHz
    would be."""
    window, mel = _mel()
    n_frames = 1 + int(y.size * SAMPLE_RATE / sr) // HOP
    length = (PATCH_FRAMES - 1) * HOP + N_FFT
    out = []
    for start in patch_starts(n_frames, patches):
        segment = _stretch(y, sr, start * HOP - N_FFT // 2, length)
        frames = sliding_window_view(segment, N_FFT)[::HOP]
        power = np.square(np.abs(np.fft.rfft(frames * window, axis=1))).astype(np.float32)
        out.append(np.log10(1.0 + 10000.0 * (power @ mel)))
    return np.stack(out)


def embed(y: np.ndarray, sr: int, patches: int = PATCHES) -> tuple[np.ndarray, np.ndarray]:
    """(embedding, tags) for a mono signal at `sr`. The embedding, (2 * ROWS,): the mid-end's features
    averaged over each patch, then their mean and standard deviation over the patches, interleaved (feature
    1's mean, its std, feature 2's ...). The tags, (len(TAGS),): each tag's probability, averaged over the
    patches."""
    mean_pool, _, taggram = features(log_mel_patches(y, sr, patches))
    per_patch = mean_pool[:, -ROWS:]
    embedding = np.column_stack([per_patch.mean(axis=0), per_patch.std(axis=0)]).ravel()
    return embedding.astype(np.float64), taggram.mean(axis=0).astype(np.float64)
