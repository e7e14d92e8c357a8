"""The workshop speed-ups (issue 27) change how, not what: each faster path gives the result of
the code it replaced (kept as the reference; ``make bench --only speedups`` times both)."""

from __future__ import annotations

import numpy as np
import pytest

from carotidkit.segment import imt
from carotidkit.synth import anatomy as A
from carotidkit.synth import bmode
from carotidkit.synth.annotate import ANNOTATORS, annotate


@pytest.mark.parametrize("max_step", [1, 2, 3])
def test_vectorised_best_path_is_the_loop(max_step):
    rng = np.random.default_rng(max_step)
    for R, C, pen in ((40, 120, 0.3), (7, 50, 0.0), (120, 300, 2.0)):
        score = rng.normal(size=(R, C)).astype(np.float32)
        assert np.array_equal(imt._best_path(score, pen, max_step), imt._best_path_loop(score, pen, max_step))
        ties = rng.integers(0, 3, size=(R, C)).astype(np.float32)  # many equal sums: same tie-break
        assert np.array_equal(imt._best_path(ties, 1.0, max_step), imt._best_path_loop(ties, 1.0, max_step))
    path = imt._best_path(rng.normal(size=(30, 80)), 0.1, max_step)
    assert np.abs(np.diff(path)).max() <= max_step


def test_annotators_around_the_plaque_draw_the_whole_frame_mask():
    checked = 0
    for i in range(14):
        rng = np.random.default_rng(100 + i)
        anat = A.random_anatomy(rng, age=70, vd=1.0, n_plaques=1 + i % 3)
        ex = bmode.render_export(rng, size=400 + 40 * (i % 4), anat=anat)
        cov = ex.plaque.copy()
        if i == 13:  # a plaque touching the image's edge: the crop is clipped there
            cov[:, :30] = np.maximum(cov[:, :30], (np.arange(cov.shape[0]) > cov.shape[0] - 25)[:, None])
        for k, reader in enumerate(ANNOTATORS):
            fast = annotate(cov, ex.pixel_spacing_mm, reader, np.random.default_rng(k + 7 * i))
            full = annotate(cov, ex.pixel_spacing_mm, reader, np.random.default_rng(k + 7 * i), _whole_frame=True)
            assert np.array_equal(fast, full), (i, reader.name)
            checked += int(full.any())
    assert checked >= 20  # most cases drew a plaque
