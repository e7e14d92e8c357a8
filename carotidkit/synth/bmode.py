"""Full B-mode frames as a scanner exports them: scan area, black margins, burned-in overlays.

:func:`render_export` returns the exported 8-bit image *and* its truth: the same image without
overlays, the overlay pixel mask, the scan-area box and the plaque mask, so cleaning and
segmentation can be scored exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import anatomy as A
from . import speckle as S

_NAMES = ["GARCIA M", "PEREZ J", "LOPEZ A", "SCHMIDT K", "MUELLER H", "ROSSI L", "DUBOIS C"]


@dataclass
class Export:
    image: np.ndarray  # uint8 [H, W], as exported (overlays burned in)
    clean: np.ndarray  # uint8 [H, W], the same without overlays (truth for inpainting)
    overlay: np.ndarray  # bool [H, W], pixels the overlays visibly changed
    plaque: np.ndarray  # float32 [H, W] in [0, 1], plaque coverage (anti-aliased)
    scan_box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the scan area in the export
    pixel_spacing_mm: tuple[float, float]  # (row, col) spacing in the export
    anatomy: A.Anatomy


def render_scan(
    anat: A.Anatomy,
    out_hw: tuple[int, int],
    rng: np.random.Generator,
    grid_mm: float = 0.1,
    gain_db: float = 0.0,
    noise: float = 0.004,
    dynamic_range_db: float = 50.0,
):
    """Speckle image of ``anat`` resampled to ``out_hw`` pixels; also labels and plaque coverage."""
    z = np.arange(0, anat.depth_mm, grid_mm, dtype=np.float32)
    x = np.arange(0, anat.width_mm, grid_mm, dtype=np.float32)
    amp, labels, plaque = A.echo_map(anat, z, x, rng)
    amp *= S.tgc_attenuation(z, gain_db=gain_db, compensation=float(rng.uniform(0.8, 0.95)))[:, None]
    iq = S.iq_image(amp, S.gaussian_psf(grid_mm, grid_mm), rng, noise_std=noise)
    img = S.log_compress(S.envelope(iq), dynamic_range_db=dynamic_range_db)
    h, w = out_hw
    interp = cv2.INTER_AREA if h < len(z) else cv2.INTER_LINEAR
    img = cv2.resize(img, (w, h), interpolation=interp)
    cov = cv2.resize(
        plaque.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA if h < len(z) else cv2.INTER_LINEAR
    )
    lab = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
    return img, lab, cov


def _text(img, mask, txt, org, scale, thick=1, value=255):
    cv2.putText(img, txt, org, cv2.FONT_HERSHEY_SIMPLEX, scale, value, thick, cv2.LINE_AA)
    cv2.putText(mask, txt, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick, cv2.LINE_AA)


def _cross(img, mask, cx, cy, arm, thick, value=255):
    for a, b in (((cx - arm, cy), (cx + arm, cy)), ((cx, cy - arm), (cx, cy + arm))):
        cv2.line(img, a, b, value, thick, cv2.LINE_AA)
        cv2.line(mask, a, b, 255, thick, cv2.LINE_AA)


def burn_overlays(canvas: np.ndarray, box, rng: np.random.Generator, plaque_cov: np.ndarray, scale: float):
    """Draw scanner overlays onto ``canvas`` in place; returns the drawn-ink mask (uint8)."""
    ink = np.zeros_like(canvas)
    x0, y0, x1, y1 = box
    H, W = canvas.shape
    fs = max(0.45, 0.55 * scale * 1.5)
    th = max(2, int(round(1.5 * scale)))  # scanners draw overlays >= 2 px wide
    # patient/institution text and acquisition settings in the margins
    if y0 > 18 * scale:
        _text(
            canvas,
            ink,
            f"{rng.choice(_NAMES)}  ID {rng.integers(10**6, 10**7)}",
            (int(10 * scale), int(min(y0 - 4, 26 * scale))),
            fs,
            th,
        )
        _text(
            canvas,
            ink,
            f"{rng.integers(1, 28):02d}/{rng.integers(1, 12):02d}/20{rng.integers(10, 24)}",
            (int(W - 190 * scale), int(min(y0 - 4, 26 * scale))),
            fs,
            th,
        )
    if x1 < W - 60 * scale:
        for i, t in enumerate(["7.5MHz", f"G{rng.integers(40, 80)}", f"DR{rng.integers(50, 70)}", "CCA"]):
            _text(canvas, ink, t, (int(x1 + 8 * scale), int(y0 + (30 + 28 * i) * scale)), fs * 0.8, th)
    # depth scale ticks along the right border of the scan area, focus marker
    n_ticks = 5
    for i in range(n_ticks):
        ty = int(y0 + (i + 0.5) * (y1 - y0) / n_ticks)
        cv2.line(canvas, (x1 - int(8 * scale), ty), (x1 - 1, ty), 255, th)
        cv2.line(ink, (x1 - int(8 * scale), ty), (x1 - 1, ty), 255, th)
    fy = int(y0 + rng.uniform(0.3, 0.7) * (y1 - y0))
    tri = np.array(
        [
            [x1 - int(3 * scale), fy],
            [x1 - int(14 * scale), fy - int(6 * scale)],
            [x1 - int(14 * scale), fy + int(6 * scale)],
        ],
        np.int32,
    )
    cv2.fillPoly(canvas, [tri], 230)
    cv2.fillPoly(ink, [tri], 255)
    # probe-orientation logo in the top-left corner of the scan area
    cv2.circle(canvas, (x0 + int(14 * scale), y0 + int(14 * scale)), max(2, int(5 * scale)), 255, -1)
    cv2.circle(ink, (x0 + int(14 * scale), y0 + int(14 * scale)), max(2, int(5 * scale)), 255, -1)
    # caliper crosses on the walls / plaque, with a measurement label inside the scan area
    ys, xs = np.nonzero(plaque_cov > 0.5)
    n_cal = int(rng.integers(1, 4))
    for k in range(n_cal):
        if len(xs) and k < 2:
            j = int(rng.integers(len(xs)))
            cx, cy = x0 + int(xs[j]), y0 + int(ys[j])
        else:
            cx = int(rng.uniform(x0 + 0.2 * (x1 - x0), x1 - 0.2 * (x1 - x0)))
            cy = int(rng.uniform(y0 + 0.35 * (y1 - y0), y1 - 0.35 * (y1 - y0)))
        _cross(canvas, ink, cx, cy, int(9 * scale), th)
    if rng.random() < 0.6:
        _text(
            canvas,
            ink,
            f"D{rng.integers(1, 3)} {rng.uniform(0.5, 3.5):.2f}mm",
            (int(x0 + rng.uniform(0.05, 0.6) * (x1 - x0)), int(y1 - 12 * scale)),
            fs * 0.8,
            th,
        )
    return ink


def render_export(
    rng: np.random.Generator, size: int = 800, anat: A.Anatomy | None = None, source: str | None = None
) -> Export:
    """One exported frame in the Ar-PlaqSegm1 style: 4:3 source with margins, stretched to square.

    ``source`` picks the 4:3 source geometry ("png1200" or "dicom800"; random by default).
    """
    anat = anat or A.random_anatomy(rng, age=float(rng.uniform(45, 80)), vd=float(rng.normal(0.5, 1)))
    source = source or ("dicom800" if rng.random() < 26 / 541 else "png1200")
    sw, sh = (1200, 900) if source == "png1200" else (800, 600)
    scale = size / 800 * (sw / 1200 if source == "png1200" else 1.0) * 1.2
    sw, sh = int(round(sw * size / 800)), int(round(sh * size / 800))
    # scan area: about 60-75 % of the width, 65-80 % of the height, margins of varying width
    bw = int(sw * rng.uniform(0.55, 0.72))
    bh = int(sh * rng.uniform(0.62, 0.8))
    x0 = int(rng.uniform(0.04, 0.98) * (sw - bw) * 0.6 + 0.1 * (sw - bw))
    y0 = int(rng.uniform(0.3, 0.9) * (sh - bh))
    box = (x0, y0, x0 + bw, y0 + bh)
    anat.width_mm = anat.depth_mm * bw / bh
    scan, _lab, cov = render_scan(anat, (bh, bw), rng, gain_db=float(rng.normal(0, 2)))
    canvas = np.zeros((sh, sw), np.uint8)
    canvas[y0 : y0 + bh, x0 : x0 + bw] = scan
    cov_canvas = np.zeros((sh, sw), np.float32)
    cov_canvas[y0 : y0 + bh, x0 : x0 + bw] = cov
    clean_src = canvas.copy()
    burn_overlays(canvas, box, rng, cov, scale=scale)
    # the database stretches every 4:3 source to a square
    sq = (size, size)
    image = cv2.resize(canvas, sq, interpolation=cv2.INTER_AREA)
    clean = cv2.resize(clean_src, sq, interpolation=cv2.INTER_AREA)
    plaque = cv2.resize(cov_canvas, sq, interpolation=cv2.INTER_LINEAR)
    overlay = np.abs(image.astype(np.int16) - clean.astype(np.int16)) > 10
    fx, fy = size / sw, size / sh
    sbox = (int(round(x0 * fx)), int(round(y0 * fy)), int(round((x0 + bw) * fx)), int(round((y0 + bh) * fy)))
    spacing = (anat.depth_mm / bh / fy, anat.width_mm / bw / fx)
    return Export(image, clean, overlay, plaque, sbox, spacing, anat)
