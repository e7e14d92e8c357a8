"""Simulated annotators: two readers who trace the same plaques a little differently.

Real plaque masks are drawn by people, and two specialists never draw the same outline. The
simulator renders exact plaque coverage; :func:`annotate` turns it into one reader's mask:

- **edge placement**: a reader draws on the outside or the inside of the bright boundary
  (``edge_bias_mm``, signed distance added to the true outline);
- **boundary jitter**: a smooth random displacement of the outline (``jitter_mm`` std, features
  ``jitter_scale_mm`` apart), then contour smoothing (``smooth_mm``);
- **shoulders**: where a plaque tapers into the wall, a reader stops where it is thinner than
  ``min_thickness_mm``;
- **omission**: a small plaque beside a larger one (under ``omit_below_mm2``) is left out with
  probability ``omit_prob``; the largest plaque of an image is always drawn;
- **merge/split**: two plaques less than ``merge_gap_mm`` apart are drawn as one with
  probability ``merge_prob``.

Calibration. Rulloni et al. (Sci Data 13, 702, 2026) call their ensemble's overlap on the
Ar-PlaqSegm1 test plaques "moderate" and "comparable to inter-observer agreement"; a public
re-analysis of the same split reaches Dice 0.50-0.66. We found no published two-reader Dice for
2-D longitudinal carotid plaque masks in the sources available to us, so the agreement is set to
sit at, or just above, that range: :data:`AGREEMENT_BAND` (mean reader-vs-reader Dice on plaque
images, at the database's own resolution). ``tests/test_synth.py`` checks it on a sample; change
the readers and the band together if a published figure for your setting says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from .anatomy import _smooth_noise

#: the configured band of mean annotator-1-vs-annotator-2 Dice on plaque images (see module doc)
AGREEMENT_BAND = (0.62, 0.78)


@dataclass(frozen=True)
class Annotator:
    name: str
    edge_bias_mm: float = 0.0  # + draws outside the true outline, - inside
    jitter_mm: float = 0.25
    jitter_scale_mm: float = 1.2
    smooth_mm: float = 0.3
    min_thickness_mm: float = 0.3
    omit_below_mm2: float = 8.0
    omit_prob: float = 0.35
    merge_gap_mm: float = 3.0
    merge_prob: float = 0.5


#: annotator 1 draws the database's masks; annotator 2's are kept with the truth
ANNOTATORS = (
    Annotator("annotator_1", edge_bias_mm=0.12, smooth_mm=0.25, min_thickness_mm=0.25, merge_prob=0.6),
    Annotator("annotator_2", edge_bias_mm=-0.12, smooth_mm=0.4, min_thickness_mm=0.45, merge_prob=0.3),
)


def annotate(
    coverage: np.ndarray,
    spacing_mm: tuple[float, float],
    reader: Annotator,
    rng: np.random.Generator,
    _whole_frame: bool = False,
) -> np.ndarray:
    """One reader's binary mask (bool ``[H, W]``) of the true plaque ``coverage`` (0..1).

    ``spacing_mm`` is the (row, column) pixel spacing, so every style parameter is in mm whatever
    the image size. ``_whole_frame`` computes on the whole image instead of around the plaque
    (the same mask, slower: the reference for tests and ``bench --only speedups``).

    Example:
        m1 = annotate(export.plaque, export.pixel_spacing_mm, ANNOTATORS[0], rng)
    """
    truth = np.asarray(coverage, np.float32) > 0.5
    if not truth.any():
        return truth
    sr, sc = (float(v) for v in spacing_mm)
    px_mm = (sr + sc) / 2
    n, lab, stats, _ = cv2.connectedComponentsWithStats(truth.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA] * sr * sc
    keep = np.ones(n, bool)
    keep[0] = False
    largest = 1 + int(np.argmax(areas))
    for k in range(1, n):
        if k != largest and areas[k - 1] < reader.omit_below_mm2 and rng.random() < reader.omit_prob:
            keep[k] = False
    mask = keep[lab]
    if n > 2 and rng.random() < reader.merge_prob:  # bridge neighbouring plaques along the wall
        gap = max(3, int(round(reader.merge_gap_mm / sc)) | 1)
        mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, gap), np.uint8)) > 0
    noise = _smooth_noise(mask.shape, reader.jitter_scale_mm / px_mm, rng)
    # The drawn outline stays within ``grow`` pixels of the plaque, so everything below is computed
    # in the plaque's bounding box plus that and the smoothing kernel's reach: the distances are
    # exact there (every plaque pixel is inside), and the mask is the same as on the whole image.
    grow = max(1, int(round(1.0 / px_mm)))
    reach = grow + int(np.ceil(4 * reader.smooth_mm / min(sr, sc))) + 2
    ys, xs = np.nonzero(mask)
    y0, y1 = max(0, ys.min() - reach), min(mask.shape[0], ys.max() + reach + 1)
    x0, x1 = max(0, xs.min() - reach), min(mask.shape[1], xs.max() + reach + 1)
    if _whole_frame:
        y0, y1, x0, x1 = 0, mask.shape[0], 0, mask.shape[1]
    box = mask[y0:y1, x0:x1]
    # signed distance to the outline in mm (+ inside), displaced by the reader's bias and jitter
    inside = ndimage.distance_transform_edt(box, sampling=(sr, sc))
    outside = ndimage.distance_transform_edt(~box, sampling=(sr, sc))
    sdf = np.where(box, inside, -outside).astype(np.float32)
    sdf += reader.edge_bias_mm + reader.jitter_mm * noise[y0:y1, x0:x1]
    s = reader.smooth_mm / px_mm
    if s > 0.5:
        sdf = cv2.GaussianBlur(sdf, (0, 0), sigmaX=reader.smooth_mm / sc, sigmaY=reader.smooth_mm / sr)
    near = ndimage.binary_dilation(box, iterations=grow)  # stays near the plaque
    drawn = np.zeros_like(mask)
    drawn[y0:y1, x0:x1] = (sdf > 0) & near
    # shoulders: columns where the drawn plaque is thinner than the reader's threshold are left out
    thin = drawn.sum(0) * sr < reader.min_thickness_mm
    drawn[:, thin] = False
    return drawn


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two masks (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2 * (a & b).sum() / s)
