"""Ultrasound image formation: scatterers, point-spread function, envelope, log compression.

The model is the standard linear one: the received (demodulated, complex IQ) signal is the
tissue's scatterer field convolved with the system's point-spread function (PSF); the B-mode
envelope is the magnitude of that analytic signal; the display is its log-compressed value.
Scatterers are circular complex Gaussian with a standard deviation equal to the local
echogenicity, so homogeneous tissue gives fully developed speckle with a Rayleigh envelope
(mean/std = sqrt(pi/(4-pi)) = 1.913).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

RAYLEIGH_SNR = float(np.sqrt(np.pi / (4 - np.pi)))  # 1.9131


def gaussian_psf(
    dz_mm: float,
    dx_mm: float,
    axial_sigma_mm: float = 0.12,
    lateral_sigma_mm: float = 0.22,
    f0_mhz: float = 7.5,
    c_m_s: float = 1540.0,
):
    """Complex baseband PSF on the (depth, lateral) pixel grid.

    The axial envelope is a Gaussian pulse; the demodulated carrier residue is a phase ramp
    (round-trip wavelength lambda/2). Returned normalised to unit energy.
    """
    hz = int(np.ceil(3 * axial_sigma_mm / dz_mm))
    hx = int(np.ceil(3 * lateral_sigma_mm / dx_mm))
    z = np.arange(-hz, hz + 1) * dz_mm
    x = np.arange(-hx, hx + 1) * dx_mm
    zz, xx = np.meshgrid(z, x, indexing="ij")
    env = np.exp(-(zz**2) / (2 * axial_sigma_mm**2) - xx**2 / (2 * lateral_sigma_mm**2))
    wavelength_mm = c_m_s / (f0_mhz * 1e6) * 1e3
    psf = env * np.exp(2j * np.pi * zz / (wavelength_mm / 2) * 0.05)  # small residual carrier
    return (psf / np.sqrt((np.abs(psf) ** 2).sum())).astype(np.complex64)


def scatterers(amplitude: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Circular complex Gaussian scatterers whose std is the echogenicity map."""
    shape = amplitude.shape
    s = (rng.standard_normal(shape, dtype=np.float32) + 1j * rng.standard_normal(shape, dtype=np.float32)) / np.sqrt(2)
    return (s * amplitude).astype(np.complex64)


def iq_image(amplitude: np.ndarray, psf: np.ndarray, rng: np.random.Generator, noise_std: float = 0.0) -> np.ndarray:
    """Complex IQ image: scatterers convolved with the PSF, plus electronic noise."""
    iq = fftconvolve(scatterers(amplitude, rng), psf, mode="same").astype(np.complex64)
    if noise_std > 0:
        iq += scatterers(np.full(amplitude.shape, noise_std, np.float32), rng)
    return iq


def envelope(iq: np.ndarray) -> np.ndarray:
    """Envelope detection: magnitude of the analytic (IQ) signal."""
    return np.abs(iq).astype(np.float32)


def tgc_attenuation(
    depth_mm: np.ndarray,
    f0_mhz: float = 7.5,
    alpha_db_cm_mhz: float = 0.5,
    compensation: float = 0.9,
    gain_db: float = 0.0,
) -> np.ndarray:
    """Amplitude factor of round-trip attenuation after time-gain compensation.

    ``compensation`` < 1 leaves a residual fall-off with depth, as on real scanners.
    """
    loss_db = 2 * alpha_db_cm_mhz * f0_mhz * depth_mm / 10.0
    return (10 ** ((gain_db - (1 - compensation) * loss_db) / 20.0)).astype(np.float32)


def log_compress(
    env: np.ndarray,
    dynamic_range_db: float = 55.0,
    ref: float | None = None,
    ref_percentile: float = 99.9,
    white_level: float = 232.0,
) -> np.ndarray:
    """Map the envelope to 8-bit display values over ``dynamic_range_db``.

    ``ref`` (envelope value shown at ``white_level``) defaults to a high percentile, so the
    brightest tissue rarely saturates (burned-in overlays stay the only pure-white pixels).
    """
    env = np.asarray(env, np.float32)
    if ref is None:
        ref = float(np.percentile(env, ref_percentile))
    db = 20 * np.log10(np.maximum(env, 1e-12) / max(ref, 1e-12))
    out = white_level * (1 + db / dynamic_range_db)
    return np.clip(out, 0, 255).astype(np.uint8)
