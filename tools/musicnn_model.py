"""Converts musicnn's MSD model to ONNX for `musicrec.analysis.musicnn`, and records the original's outputs.

    python tools/musicnn_model.py

Runs in a separate environment with TensorFlow, never the project's (musicnn 0.1.0 pins numpy < 1.17):

    python -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu==2.21.0 "tf_keras~=2.21.0" tf2onnx
    /tmp/tf/bin/pip install --no-deps musicnn==0.1.0
    TF_USE_LEGACY_KERAS=1 /tmp/tf/bin/python tools/musicnn_model.py

musicnn's own code builds the graph (`musicnn.models.define_model`, at inference: batch normalisation
with its moving averages, no dropout) and restores the checkpoint its wheel ships (`MSD_musicnn`: trained
on the Million Song Dataset's 50 most used tags; ISC licence, kept beside the model); tf2onnx converts the
frozen graph from its input (log-mel patches) to its time-pooled features (`mean_pool`, `max_pool`: every
layer up to the mid-end, 753 features, averaged and maximised over the frames) and to its tagging head's
output (`taggram`: the 50 tags' probabilities, the sigmoid of the logits, as musicnn's extractor gives them). Writes
`include/musicrec/analysis/network/msd_musicnn.onnx`, and `tests/data/musicnn_reference.npz`: three input patches
and what the TensorFlow graph computes from them, which the tests hold the ONNX model to.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
NETWORK = ROOT / "include" / "musicrec" / "analysis" / "network" / "msd_musicnn.onnx"
REFERENCE = ROOT / "tests" / "data" / "musicnn_reference.npz"
FRAMES, MELS = 187, 96
OPSET = 17


def patches() -> np.ndarray:
    """Log-mel-like inputs in musicnn's range: noise, a rising tone with harmonics, silence."""
    rng = np.random.default_rng(7)
    noise = rng.uniform(0.0, 3.0, (FRAMES, MELS))
    tone = np.zeros((FRAMES, MELS))
    for t in range(FRAMES):
        for h in (1, 2, 3):
            tone[t, min(MELS - 1, h * (10 + t // 12))] = 3.0 / h
    return np.stack([noise, tone, np.zeros((FRAMES, MELS))]).astype(np.float32)


def main() -> None:
    import musicnn
    import tensorflow as tf
    import tf2onnx
    from musicnn import configuration, models

    tf.compat.v1.disable_eager_execution()
    x = tf.compat.v1.placeholder(tf.float32, [None, FRAMES, MELS], name="log_mel")
    with tf.name_scope("model"):
        outputs = models.define_model(x, False, "MSD_musicnn", len(configuration.MSD_LABELS))
    pooled = [
        tf.identity(outputs[6], name="mean_pool"),
        tf.identity(outputs[7], name="max_pool"),
        tf.nn.sigmoid(outputs[0], name="taggram"),
    ]
    session = tf.compat.v1.Session()
    tf.compat.v1.train.Saver().restore(session, os.path.join(os.path.dirname(musicnn.__file__), "MSD_musicnn", ""))

    inputs = patches()
    mean, peak, tags = session.run(pooled, feed_dict={x: inputs})
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        REFERENCE, patches=inputs, mean_pool=mean, max_pool=peak, taggram=tags, labels=configuration.MSD_LABELS
    )
    print(f"{REFERENCE}: mean_pool {mean.shape}, max_pool {peak.shape}, taggram {tags.shape}")

    frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
        session, session.graph.as_graph_def(), ["mean_pool", "max_pool", "taggram"]
    )
    model, _ = tf2onnx.convert.from_graph_def(
        frozen, input_names=["log_mel:0"], output_names=["mean_pool:0", "max_pool:0", "taggram:0"], opset=OPSET
    )
    NETWORK.write_bytes(model.SerializeToString())
    print(f"{NETWORK}: {NETWORK.stat().st_size:,} bytes, opset {OPSET}")


if __name__ == "__main__":
    main()
