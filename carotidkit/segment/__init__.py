"""Plaque segmentation: Keras U-Nets on keras.applications encoders, training, ensemble, metrics.

Importing this package does not import TensorFlow or torch: ``carotidkit.segment.metrics`` is
numpy only; ``carotidkit.segment.unet``, ``train`` and ``ensemble.PlaqueSegmenter.load`` import Keras.

Keras runs on the torch backend unless ``KERAS_BACKEND`` says otherwise: on 2 CPU cores it
trained the three workshop U-Nets 1.1-1.4x faster than TensorFlow (no graph tracing, both cores
busy) at the same test Dice, and predicted 2.5-4.6x faster (``make bench``, ``bench/results/unet.json``).
``.keras`` files are backend-neutral: a model trained on one backend loads on the other.
"""

import logging
import os

# quiet TensorFlow's C++ INFO/WARNING lines and Python retracing warnings in notebooks and logs
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "torch")
logging.getLogger("tensorflow").setLevel(logging.ERROR)


def keras_quietly():
    """Import Keras (and TensorFlow) with the C-level stderr muted for the import only.

    TensorFlow prints oneDNN/absl start-up lines from C++ before its logging is configured; no
    environment variable silences them, and in notebooks they would land in every report.
    Import errors still raise normally.
    """
    import sys

    if "keras" in sys.modules:
        return sys.modules["keras"]
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # TF resets it while importing
    try:
        import tensorflow as tf

        tf.get_logger().setLevel(logging.ERROR)  # retracing warnings in notebooks
    except ImportError:  # torch backend without TF
        pass
    return keras


def run(settings=None, /, **knobs):
    """Notebook 02's stage: see :func:`carotidkit.segment.stage.run` (its settings object, or knobs as keywords)."""
    from .stage import run as _run

    return _run(settings, **knobs)
