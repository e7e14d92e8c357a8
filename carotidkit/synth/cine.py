"""Carotid cine loops: the same anatomy moving with the cardiac cycle.

The speckle (complex IQ) image is formed once in tissue ("material") coordinates; each frame
warps it by the wall motion of that instant, so the speckle moves with the tissue as on a real
scanner. The lumen radius follows an arterial pulse waveform at the subject's heart rate; the
distension (relative diameter change, 5-10 % in healthy arteries) falls as the artery stiffens
with vascular damage. Region labels (lumen, walls, plaque, perivascular tissue) move the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import anatomy as A
from . import speckle as S


@dataclass
class Clip:
    frames: np.ndarray  # uint8 [T, H, W]
    labels: np.ndarray  # uint8 [T, H, W] (anatomy.LABELS)
    fps: float
    pixel_spacing_mm: float
    distension: float  # relative diameter change over the cycle (truth)
    heart_rate_bpm: float


def pulse_waveform(phase: np.ndarray) -> np.ndarray:
    """Normalised carotid distension waveform over one cycle (systolic peak, dicrotic wave)."""
    p = np.mod(phase, 1.0)
    w = (
        np.exp(-(((p - 0.17) / 0.08) ** 2))
        + 0.35 * np.exp(-(((p - 0.42) / 0.07) ** 2))
        + 0.5 * np.exp(-(((p - 0.25) / 0.12) ** 2))
    )
    return (w - w.min()) / (w.max() - w.min())


def distension_from(
    age: float, vd: float, rng: np.random.Generator | None = None, per_vd: float = 0.014, sd: float = 0.006
) -> float:
    """Relative diameter change: ~9 % when young and healthy, falling with age and (by ``per_vd``
    per SD) damage; ``sd``: person-to-person variation beyond both (pulse pressure, the phase of
    the measurement)."""
    d = 0.085 - 0.012 * (age - 55) / 10 - per_vd * vd
    if rng is not None:
        d += rng.normal(0, sd)
    return float(np.clip(d, 0.015, 0.13))


def render_clip(
    anat: A.Anatomy,
    rng: np.random.Generator,
    *,
    size: int = 64,
    fps: float = 25.0,
    seconds: float = 1.4,
    heart_rate_bpm: float = 68.0,
    distension: float = 0.08,
    fov_mm: float = 20.0,
    gain_db: float = 0.0,
    noise: float = 0.004,
    oversample: int = 2,
    dynamic_range_db: float = 50.0,
    display_gain_db: float = 0.0,
    tgc_compensation: float = 0.9,
    tgc_db: np.ndarray | None = None,
    motion_mm: np.ndarray | None = None,
    wall_stiffening: float = 0.0,
) -> Clip:
    """Render one loop of ``seconds`` at ``fps``, ``size`` x ``size`` pixels around the vessel.

    Acquisition: ``gain_db`` (before the display reference is set, so it cancels out) and
    ``display_gain_db`` (after it: the operator's overall gain, which brightens the image),
    ``dynamic_range_db`` (log compression), ``tgc_compensation`` and a
    per-depth ``tgc_db`` curve (``size * oversample`` values: the operator's TGC sliders),
    ``fov_mm`` (depth/zoom), ``motion_mm`` (``[frames, 2]`` axial, lateral probe displacement).
    ``wall_stiffening``: relative SD of the far wall's distension along the vessel (segments of
    ~6 mm that move less or more than the rest; 0 = uniform)."""
    n = size * oversample
    grid = fov_mm / n
    z_top = anat.center_mm - fov_mm / 2 + rng.uniform(-1.5, 1.5)  # probe position varies
    x_left = anat.width_mm / 2 - fov_mm / 2 + rng.uniform(-3, 3)
    z = (z_top + np.arange(n) * grid).astype(np.float32)
    x = (x_left + np.arange(n) * grid).astype(np.float32)
    amp, labels, _ = A.echo_map(anat, z, x, rng)
    amp *= S.tgc_attenuation(z, gain_db=gain_db, compensation=tgc_compensation)[:, None]
    if tgc_db is not None:
        amp *= (10 ** (np.asarray(tgc_db, np.float32) / 20.0))[:, None]
    iq = S.iq_image(amp, S.gaussian_psf(grid, grid), rng, noise_std=noise)
    iq2 = np.dstack([iq.real, iq.imag]).astype(np.float32)
    ref = float(np.percentile(np.abs(iq), 99.7)) * 10 ** (-display_gain_db / 20.0)

    n_frames = max(2, int(round(seconds * fps)))
    t = np.arange(n_frames) / fps
    wave = pulse_waveform(t * heart_rate_bpm / 60.0 + rng.uniform(0, 1))
    r0 = anat.lumen_radius_mm
    rows = np.arange(n, dtype=np.float32)[:, None]
    cols = np.broadcast_to(np.arange(n, dtype=np.float32)[None, :], (n, n))
    y = (z[:, None] - anat.center(x)[None, :]).astype(np.float32)  # signed distance from centreline
    ay = np.maximum(np.abs(y), 1e-3)
    inside = ay < r0
    far_gain = 1.0
    if wall_stiffening:  # drawn only when present: other loops keep their draws
        m = cv2.resize(rng.standard_normal((1, max(2, int(fov_mm / 6) + 2))).astype(np.float32), (n, 1),
                       interpolation=cv2.INTER_CUBIC)  # fmt: skip
        far_gain = np.where(y > 0, np.clip(1 + wall_stiffening * m, 0.0, 2.0), 1.0).astype(np.float32)
    frames = np.empty((n_frames, size, size), np.uint8)
    labs = np.empty((n_frames, size, size), np.uint8)
    for k in range(n_frames):
        dr = r0 * distension * wave[k] * far_gain
        u = np.where(inside, y * dr / r0, np.sign(y) * dr * r0 / ay)  # displacement (mm)
        map_y = (rows - u / grid).astype(np.float32)
        map_x = cols
        if motion_mm is not None:  # the probe moves a little: the whole field shifts
            map_y = map_y + np.float32(motion_mm[k, 0] / grid)
            map_x = (cols + np.float32(motion_mm[k, 1] / grid)).astype(np.float32)
        warped = cv2.remap(iq2, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        env = np.sqrt(warped[..., 0] ** 2 + warped[..., 1] ** 2)
        img = S.log_compress(env, ref=ref, dynamic_range_db=dynamic_range_db)
        frames[k] = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        lab = cv2.remap(labels, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)
        labs[k] = cv2.resize(lab, (size, size), interpolation=cv2.INTER_NEAREST)
    return Clip(frames, labs, fps, fov_mm / size, distension, heart_rate_bpm)
