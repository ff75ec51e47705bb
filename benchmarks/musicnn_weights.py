"""Converts musicnn's MSD model to the arrays `musicrec.musicnn` reads, and records the original's outputs.

    python benchmarks/musicnn_weights.py

Runs in a separate environment with TensorFlow, never the project's (musicnn 0.1.0 pins numpy < 1.17):

    python -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu==2.21.0 "tf_keras~=2.21.0"
    /tmp/tf/bin/pip install --no-deps musicnn==0.1.0
    TF_USE_LEGACY_KERAS=1 /tmp/tf/bin/python benchmarks/musicnn_weights.py

Writes `include/musicrec/models/msd_musicnn.npz`: the inference variables of the checkpoint the musicnn
wheel ships (`MSD_musicnn`: trained on the Million Song Dataset's 50 most used tags; ISC licence, kept
beside it), named as in the checkpoint, float32; the optimiser's slots are left out. And
`tests/data/musicnn_reference.npz`: three input patches and what musicnn's own TensorFlow graph computes
from them (the features of every layer up to the mid-end, pooled over time), which the tests hold the
numpy network to.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "include" / "musicrec" / "models" / "msd_musicnn.npz"
REFERENCE = ROOT / "tests" / "data" / "musicnn_reference.npz"
FRAMES, MELS = 187, 96


def checkpoint_dir() -> str:
    import musicnn

    return os.path.join(os.path.dirname(musicnn.__file__), "MSD_musicnn", "")


def convert() -> None:
    import tensorflow as tf

    reader = tf.compat.v1.train.NewCheckpointReader(checkpoint_dir())
    names = [n for n in reader.get_variable_to_shape_map() if "Adam" not in n and "_power" not in n]
    arrays = {n: reader.get_tensor(n).astype(np.float32) for n in sorted(names)}
    np.savez_compressed(WEIGHTS, **arrays)
    print(f"{WEIGHTS}: {len(arrays)} arrays, {sum(a.size for a in arrays.values()):,} parameters")


def patches() -> np.ndarray:
    """Log-mel-like inputs in musicnn's range: noise, a rising tone with harmonics, silence."""
    rng = np.random.default_rng(7)
    noise = rng.uniform(0.0, 3.0, (FRAMES, MELS))
    tone = np.zeros((FRAMES, MELS))
    for t in range(FRAMES):
        for h in (1, 2, 3):
            tone[t, min(MELS - 1, h * (10 + t // 12))] = 3.0 / h
    return np.stack([noise, tone, np.zeros((FRAMES, MELS))]).astype(np.float32)


def reference() -> None:
    import tensorflow as tf
    from musicnn import configuration, models

    tf.compat.v1.disable_eager_execution()
    x = tf.compat.v1.placeholder(tf.float32, [None, FRAMES, MELS])
    training = tf.compat.v1.placeholder(tf.bool)
    with tf.name_scope("model"):
        outputs = models.define_model(x, training, "MSD_musicnn", len(configuration.MSD_LABELS))
    mean_pool, max_pool = outputs[6], outputs[7]
    session = tf.compat.v1.Session()
    tf.compat.v1.train.Saver().restore(session, checkpoint_dir())
    inputs = patches()
    mean, peak = session.run([mean_pool, max_pool], feed_dict={x: inputs, training: False})
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(REFERENCE, patches=inputs, mean_pool=mean, max_pool=peak)
    print(f"{REFERENCE}: mean_pool {mean.shape}, max_pool {peak.shape}")


if __name__ == "__main__":
    convert()
    reference()
