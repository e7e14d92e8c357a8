"""Far-wall intima-media thickness (IMT) of a longitudinal B-mode image by dynamic programming.

The classic method of Liang et al. (2000, *IEEE Trans Med Imaging* 19:127, "A multiscale dynamic
programming procedure for boundary detection in ultrasonic artery images"), in its single-scale
form: the far wall shows two rising edges going deeper, dark lumen -> bright intima (the
lumen-intima interface, LI) and dark media -> bright adventitia (the media-adventitia interface,
MA). Each is the path across the image that maximises the summed vertical intensity gradient,
moving at most two rows per column (a smooth wall), found exactly by dynamic programming and
refined to a fraction of a pixel:

1. the lumen's centre line: the darkest row of each column after heavy smoothing, then a running
   median along the vessel (plaques and shadows do not pull it away);
2. LI: the best rising-edge path from 0.5 to 9 mm below the centre line;
3. MA: the best rising-edge path 0.3 to 2.0 mm below LI (past the bright intima; adult IMT
   is rarely below 0.4 mm);
4. IMT per column = (MA - LI) x row spacing, corrected for the wall's slope; columns where it
   exceeds 1.5 mm (plaque by the Mannheim consensus), where LI is lifted more than 0.4 mm above
   the wall line (the deepest LI nearby: a plaque's surface), where a plaque mask says plaque, or
   where the LI edge is weak (acoustic shadow) are left out; the image's IMT is the median of the
   rest.

:func:`far_wall_imt` takes an image and its pixel spacing (mm) and returns the IMT with the two
paths (for a figure). Tested against the simulator's planted IMT (``tests/test_subject_plaque.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Mannheim consensus: a focal thickening above 1.5 mm is plaque, not IMT
MAX_IMT_MM = 1.5


@dataclass
class ImtResult:
    imt_mm: float  # median over valid columns (NaN when none)
    n_columns: int  # columns the median is taken over
    share_valid: float  # of the columns searched
    li: np.ndarray  # row of the lumen-intima interface per column (float, NaN outside)
    ma: np.ndarray  # row of the media-adventitia interface per column


def _best_path(score: np.ndarray, step_penalty: float, max_step: int = 2) -> np.ndarray:
    """Rows (one per column) of the path through ``score [R, C]`` with the largest sum, moving at
    most ``max_step`` rows between neighbouring columns (each row moved costs ``step_penalty``).

    One column per step, a handful of array operations each: the accumulated score sits in a
    buffer padded with -inf, whose ``2 max_step + 1`` shifted views are the candidate
    predecessors (ties go to the upper row, as in a scan from -max_step up)."""
    R, C = score.shape
    m = max_step
    pen = (step_penalty * np.abs(np.arange(-m, m + 1)))[:, None]
    padded = np.full(R + 2 * m, -np.inf)
    acc = padded[m : m + R]  # a view: writing acc updates the shifted views below
    acc[:] = score[:, 0]
    shifted = np.lib.stride_tricks.sliding_window_view(padded, R)  # [2m+1, R]: row i = from r + i - m
    cols = np.ascontiguousarray(score.T, dtype=np.float64)
    back = np.empty((C, R), np.intp)
    cand = np.empty((2 * m + 1, R))
    for c in range(1, C):
        np.subtract(shifted, pen, out=cand)
        back[c] = cand.argmax(0)
        np.add(cand.max(0), cols[c], out=acc)
    path = np.empty(C, int)
    path[-1] = int(acc.argmax())
    for c in range(C - 1, 0, -1):
        path[c - 1] = path[c] + back[c, path[c]] - m
    return path


def _best_path_loop(score: np.ndarray, step_penalty: float, max_step: int = 2) -> np.ndarray:
    """:func:`_best_path` as first written (a loop over the moves in every column): kept as the
    reference the faster one is tested (same path) and benchmarked (``bench --only speedups``) against."""
    R, C = score.shape
    acc = score[:, 0].astype(np.float64)
    back = np.zeros((R, C), np.int8)
    moves = np.arange(-max_step, max_step + 1)
    for c in range(1, C):
        cand = np.full((len(moves), R), -np.inf)
        for i, k in enumerate(moves):  # came from row r + k
            if k >= 0:
                cand[i, : R - k] = acc[k:]
            else:
                cand[i, -k:] = acc[:k]
            cand[i] -= step_penalty * abs(k)
        best = cand.argmax(0)
        acc = cand[best, np.arange(R)] + score[:, c]
        back[:, c] = moves[best]
    path = np.empty(C, int)
    path[-1] = int(acc.argmax())
    for c in range(C - 1, 0, -1):
        path[c - 1] = path[c] + back[path[c], c]
    return path


def _subpixel(dy: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Each column's edge row refined to a fraction of a pixel: the vertex of the parabola
    through the gradient at the row and its two neighbours."""
    H, W = dy.shape
    r = np.clip(rows, 1, H - 2)
    c = np.arange(W)
    a, b, d = dy[r - 1, c], dy[r, c], dy[r + 1, c]
    den = a - 2 * b + d
    off = np.where(den < 0, 0.5 * (a - d) / np.where(den < 0, den, -1.0), 0.0)
    return r + np.clip(off, -0.5, 0.5)


def _band(img: np.ndarray, top: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """``img`` sampled in a band following ``top``: rows ``top[c] + lo .. top[c] + hi - 1``
    (edge rows repeated beyond the image)."""
    H = img.shape[0]
    rows = np.clip(top[None, :] + np.arange(lo, hi)[:, None], 0, H - 1)
    return np.take_along_axis(img, rows, axis=0)


def far_wall_imt(
    image: np.ndarray,
    spacing_row_mm: float,
    spacing_col_mm: float,
    plaque_mask: np.ndarray | None = None,
    margin: float = 0.05,
) -> ImtResult:
    """Far-wall IMT (mm) of a longitudinal carotid image (uint8 or float, the scan area only).

    ``plaque_mask`` (same shape, optional): columns with plaque on the far wall are left out.
    ``margin``: share of the width ignored at each side.

    Example:
        >>> img = np.zeros((300, 200), np.uint8); img[:80] = 150  # near wall, then the lumen
        >>> img[200:] = 60; img[200:203] = 200; img[211:] = 230  # intima, media, adventitia
        >>> round(far_wall_imt(img, 0.06, 0.1).imt_mm, 2)  # drawn: 11 rows of 0.06 mm
        0.67
    """
    g = np.asarray(image, np.float32)
    if g.ndim == 3:
        g = cv2.cvtColor(g, cv2.COLOR_BGR2GRAY)
    H, W = g.shape
    sr, sc = float(spacing_row_mm), float(spacing_col_mm)
    nan = np.full(W, np.nan)
    if H < 20 or W < 20 or not (sr > 0 and sc > 0):
        return ImtResult(float("nan"), 0, 0.0, nan, nan)
    # 1. lumen centre line
    heavy = cv2.GaussianBlur(g, (0, 0), sigmaX=1.0 / sc, sigmaY=1.0 / sr)
    lo, hi = int(0.08 * H), int(0.92 * H)
    centre = lo + heavy[lo:hi].argmin(0)
    k = max(3, int(round(W / 4)) | 1)
    pad = np.pad(centre, k // 2, mode="edge")
    centre = np.median(np.lib.stride_tricks.sliding_window_view(pad, k), axis=1).astype(int)
    # gradient of a lightly smoothed image (smoothing mostly along the wall)
    light = cv2.GaussianBlur(g, (0, 0), sigmaX=0.4 / sc, sigmaY=0.06 / sr)
    dy = np.zeros_like(light)
    dy[1:-1] = (light[2:] - light[:-2]) / 2
    step = 0.05 * float(np.percentile(np.abs(dy), 99) + 1e-6)
    # 2. lumen-intima interface
    a, b = int(round(0.5 / sr)), int(round(9.0 / sr))
    band = _band(dy, centre, a, b)
    li = centre + a + _best_path(band, step)
    # 3. media-adventitia interface
    a2, b2 = max(1, int(round(0.3 / sr))), int(round(2.0 / sr))
    band2 = _band(dy, li, a2, b2)
    ma = li + a2 + _best_path(band2, step)
    # 4. IMT per column (sub-pixel edges), slope-corrected, and the columns it is valid in
    slope = np.gradient(cv2.GaussianBlur(li.astype(np.float32)[None, :], (0, 0), 3.0)[0]) * sr / sc
    imt = (_subpixel(dy, ma) - _subpixel(dy, li)) * sr / np.sqrt(1 + slope**2)
    edge = dy[np.clip(li, 0, H - 1), np.arange(W)]
    # a plaque lifts LI above the wall line (the deepest LI rows nearby): those columns are plaque
    win = max(3, int(round(10.0 / sc)) | 1)
    padded = np.pad(li.astype(float), win // 2, mode="edge")
    wall = np.percentile(np.lib.stride_tricks.sliding_window_view(padded, win), 90, axis=1)
    lifted = (wall - li) * sr > 0.4
    lifted = cv2.dilate(lifted.astype(np.uint8)[None, :], np.ones((1, int(round(1.0 / sc)) | 1), np.uint8))[0] > 0
    valid = (imt <= MAX_IMT_MM) & ~lifted & (edge > 0.25 * np.median(edge)) & (li < H - 1) & (ma < H - 1)
    m = int(round(margin * W))
    valid[:m], valid[W - m :] = False, False
    if plaque_mask is not None:
        pm = np.asarray(plaque_mask, bool)
        below = np.arange(H)[:, None] > centre[None, :]
        far_plaque = (pm & below).any(0)
        grown = cv2.dilate(far_plaque.astype(np.uint8)[None, :], np.ones((1, int(round(2.0 / sc)) | 1), np.uint8))[0]
        valid &= grown == 0
    n = int(valid.sum())
    searched = max(1, W - 2 * m)
    li_f, ma_f = li.astype(float), ma.astype(float)
    li_f[~valid], ma_f[~valid] = np.nan, np.nan
    return ImtResult(float(np.median(imt[valid])) if n else float("nan"), n, n / searched, li_f, ma_f)
