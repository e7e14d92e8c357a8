"""Longitudinal common-carotid anatomy: geometry, plaques and the echogenicity map it implies.

An :class:`Anatomy` is a handful of millimetre-scale numbers (lumen centre and radius, intima-
media thickness, adventitia, plaques, perivascular texture). :func:`echo_map` turns it into a
scatterer-strength (echogenicity) map and a region label map on any pixel grid; the speckle
module turns that into an image. Ranges follow ``reference/carotid_physiology.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

LABELS = {"other": 0, "lumen": 1, "near_wall": 2, "far_wall": 3, "plaque": 4, "perivascular": 5}
PLAQUE_KINDS = ("echolucent", "fibrous", "calcified", "isoechoic")
#: the kind mix of cine-loop plaques (and of :func:`random_anatomy` unless told otherwise)
DEFAULT_PLAQUE_MIX = {"echolucent": 0.3, "fibrous": 0.5, "calcified": 0.2}
#: body echogenicity of each kind (scatterer std; lumen 0.015, media 0.35, perivascular ~0.6)
_BODY_ECHO = {"echolucent": 0.22, "fibrous": 1.0, "calcified": 1.2, "isoechoic": 0.45}


@dataclass
class Plaque:
    x_mm: float  # lateral centre
    length_mm: float
    height_mm: float  # encroachment into the lumen beyond the intima
    wall: str = "far"  # "far" or "near"
    kind: str = "fibrous"  # echolucent | fibrous | calcified | isoechoic
    irregular: bool = False  # rough, ulcerated surface and a heterogeneous body
    seed: int = 0  # draws the surface of an irregular plaque


@dataclass
class Anatomy:
    depth_mm: float = 40.0
    width_mm: float = 50.0
    center_mm: float = 20.0  # lumen centre depth mid-image
    tilt: float = 0.0  # mm of depth per mm lateral
    bend_mm: float = 0.4
    bend_period_mm: float = 60.0
    lumen_radius_mm: float = 3.2
    imt_far_mm: float = 0.65
    imt_near_mm: float = 0.6
    adventitia_mm: float = 0.7
    plaques: list[Plaque] = field(default_factory=list)
    imt_wave: float = 0.0  # relative IMT undulation along the wall (diffuse thickening is not plaque)
    imt_wave_period_mm: float = 18.0
    reverb: float = 0.0  # first-order reverberation of the superficial layers into the lumen
    peri_echo: float = 0.6  # perivascular echogenicity
    peri_texture: float = 0.35  # perivascular heterogeneity (lobular fat / connective tissue)
    # the local damage signature: the perivascular tissue within 4 mm of the far-wall adventitia
    # carries a mottled texture (log-amplitude SD 0.9) whose structure goes from isotropic (0) to
    # laminar, striations parallel to the wall (1); None = no such band (simulator version 5)
    peri_far_laminar: float | None = None
    peri_far_echo_db: float = 0.0  # the same band's echogenicity relative to the rest of the shell
    skin_mm: float = 1.2
    fat_mm: float = 4.0
    muscle_mm: float = 6.0

    def center(self, x_mm: np.ndarray) -> np.ndarray:
        xc = x_mm - self.width_mm / 2
        return self.center_mm + self.tilt * xc + self.bend_mm * np.sin(2 * np.pi * xc / self.bend_period_mm)


def _smooth_noise(shape, scale_px: float, rng: np.random.Generator, scale_cols_px: float | None = None) -> np.ndarray:
    """Zero-mean, unit-std smooth random field with features of about ``scale_px`` pixels
    (``scale_cols_px`` along the rows when given: elongated features)."""
    h, w = shape
    sh, sw = max(2, int(h / scale_px) + 2), max(2, int(w / (scale_cols_px or scale_px)) + 2)
    small = rng.standard_normal((sh, sw)).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return (big - big.mean()) / (big.std() + 1e-6)


def plaque_profile(p: Plaque, x_mm: np.ndarray) -> np.ndarray:
    """Encroachment height (mm) of one plaque along x: a dome with soft shoulders.

    An irregular plaque's surface is rough (bumps of about +-25 % of the height, ~1.5 mm apart)
    and carries an ulcer: a crater 1-2 mm wide and 35-60 % of the height deep."""
    u = np.clip(1 - ((x_mm - p.x_mm) / (p.length_mm / 2)) ** 2, 0, None)
    h = p.height_mm * u**0.6
    if p.irregular:
        r = np.random.default_rng(p.seed)
        n = max(4, int(p.length_mm / 1.5) + 1)
        knots = np.linspace(p.x_mm - p.length_mm / 2, p.x_mm + p.length_mm / 2, n)
        rough = np.interp(x_mm, knots, r.normal(0, 0.25, n))
        cx = p.x_mm + r.uniform(-0.3, 0.3) * p.length_mm
        crater = r.uniform(0.35, 0.6) * np.exp(-0.5 * ((x_mm - cx) / r.uniform(0.5, 0.9)) ** 2)
        h = h * np.clip(1 + rough - crater, 0.15, None)
    return h


def echo_map(anat: Anatomy, z_mm: np.ndarray, x_mm: np.ndarray, rng: np.random.Generator):
    """Echogenicity (scatterer std) and region labels on the grid ``z_mm`` (rows) x ``x_mm`` (cols).

    Returns ``(amplitude float32 [H, W], labels uint8 [H, W], plaque_mask bool [H, W])``.
    """
    H, W = len(z_mm), len(x_mm)
    dz = float(z_mm[1] - z_mm[0]) if H > 1 else 0.1
    Z = np.broadcast_to(z_mm[:, None], (H, W)).astype(np.float32)
    c = anat.center(x_mm).astype(np.float32)
    y = Z - c[None, :]
    r = anat.lumen_radius_mm
    d_far, d_near = y - r, -y - r  # >0: outside the lumen on that side

    # background layers by depth: skin, subcutaneous fat, muscle (striated), deep tissue
    px_per_mm = 1 / dz
    amp = np.full((H, W), 0.5, np.float32)
    tex = _smooth_noise((H, W), 1.5 * px_per_mm, rng)
    amp *= np.exp(0.35 * tex)
    skin = Z < anat.skin_mm
    fat = (Z >= anat.skin_mm) & (Z < anat.skin_mm + anat.fat_mm)
    muscle_end = anat.skin_mm + anat.fat_mm + anat.muscle_mm
    muscle = (Z >= anat.skin_mm + anat.fat_mm) & (Z < muscle_end)
    amp[skin] = 1.8
    amp[fat] *= 0.8
    stria = 1 + 0.45 * np.sin(2 * np.pi * (Z + 0.15 * np.sin(x_mm[None, :] / 7.0)) / 0.9)
    amp[muscle] = (0.6 * stria * np.exp(0.15 * tex))[muscle]

    labels = np.zeros((H, W), np.uint8)
    # perivascular tissue: a shell around the adventitia, its own echogenicity and texture
    adv_out_far = anat.imt_far_mm + anat.adventitia_mm
    adv_out_near = anat.imt_near_mm + anat.adventitia_mm
    peri = ((d_far >= adv_out_far) & (d_far < adv_out_far + 4.0)) | (
        (d_near >= adv_out_near) & (d_near < adv_out_near + 4.0)
    )
    peri_tex = _smooth_noise((H, W), 0.8 * px_per_mm, rng)
    amp[peri] = (anat.peri_echo * np.exp(anat.peri_texture * peri_tex))[peri]
    labels[peri] = LABELS["perivascular"]
    if anat.peri_far_laminar is not None:  # drawn only when present: other anatomies keep their draws
        band = (d_far >= adv_out_far) & (d_far < adv_out_far + 4.0)
        w = float(np.clip(anat.peri_far_laminar, 0.0, 1.0))
        iso = _smooth_noise((H, W), 2.5 * px_per_mm, rng)
        lam = _smooth_noise((H, W), 1.6 * px_per_mm, rng, scale_cols_px=8.0 * px_per_mm)
        # both fields are unit-variance Gaussian: so is the mix, whatever w (same grey histogram)
        # (known quirk, kept so the measured workshop numbers reproduce: this ``tex`` also
        # replaces the background field that textures the adventitia below)
        tex = np.sqrt(1 - w**2) * iso + w * lam
        amp[band] *= np.exp(0.9 * tex)[band] * np.float32(10 ** (anat.peri_far_echo_db / 20))

    # plaques: encroachment heights per side and the plaque kind at each x
    h_far = np.zeros(W, np.float32)
    h_near = np.zeros(W, np.float32)
    kind_far = np.full(W, -1, np.int8)
    kind_near = np.full(W, -1, np.int8)
    for p in anat.plaques:
        prof = plaque_profile(p, x_mm).astype(np.float32)
        h, k = (h_far, kind_far) if p.wall == "far" else (h_near, kind_near)
        k[prof > h] = PLAQUE_KINDS.index(p.kind)
        np.maximum(h, prof, out=h)

    irr_far = np.zeros(W, bool)
    irr_near = np.zeros(W, bool)
    for p in anat.plaques:
        if p.irregular:
            (irr_far if p.wall == "far" else irr_near)[plaque_profile(p, x_mm) > 0] = True
    # diffuse thickening may undulate gently along the wall; it is never labelled plaque
    wave = 1.0
    if anat.imt_wave:
        xc = x_mm - anat.width_mm / 2
        wave = (1 + anat.imt_wave * np.sin(2 * np.pi * xc / anat.imt_wave_period_mm + 1.3))[None, :]
    plaque_mask = np.zeros((H, W), bool)
    for d, h, kind, irr, imt, wall_label in (
        (d_far, h_far, kind_far, irr_far, anat.imt_far_mm * wave, "far_wall"),
        (d_near, h_near, kind_near, irr_near, anat.imt_near_mm * wave, "near_wall"),
    ):
        blur = 1.0 if wall_label == "far_wall" else 0.8  # the near wall is less crisp
        d_rel = d + h[None, :]  # distance from the lumen surface
        intima = (d_rel >= 0) & (d_rel < 0.15)
        media = (d_rel >= 0.15) & (d < imt)
        advent = (d >= imt) & (d < imt + anat.adventitia_mm)
        amp[media] = 0.35 * blur
        amp[intima] = 1.3 * blur
        amp[advent] = (2.2 * blur * np.exp(0.2 * tex))[advent]
        labels[intima | media | advent] = LABELS[wall_label]
        # plaque body: from its lumen surface down into the (thickened) intima-media
        pl = (d_rel >= 0) & (d < 0.5 * imt) & (h[None, :] > 0.1)
        if pl.any():
            kind2d = np.broadcast_to(kind[None, :], (H, W))
            echo = np.array([_BODY_ECHO[k] for k in PLAQUE_KINDS] + [1.0], np.float32)
            body = echo[kind2d]  # kind -1 (no plaque) picks the last entry; masked out below
            body = body * np.exp(0.3 * _smooth_noise((H, W), 0.6 * px_per_mm, rng))
            if irr.any():  # heterogeneous: bright fibrous/calcific islands in a dark lipid-rich body
                het = _smooth_noise((H, W), 0.5 * px_per_mm, rng)
                body = np.where(irr[None, :], body * np.exp(0.9 * het), body).astype(np.float32)
            cap = pl & (d_rel < 0.2)
            amp[pl] = body[pl]
            amp[cap & (kind2d == 0)] = 1.4  # fibrous cap over a lipid core
            labels[pl] = LABELS["plaque"]
            plaque_mask |= pl

    lumen = (d_far + h_far[None, :] < 0) & (d_near + h_near[None, :] < 0)
    ghost = amp[np.minimum(np.arange(H) // 2, H - 1)] if anat.reverb else None  # tissue at half depth
    amp[lumen] = 0.015
    # reverberation clutter just below the near wall
    clutter = lumen & (d_near + h_near[None, :] > -0.8)
    amp[clutter] = 0.06
    if anat.reverb:
        # first-order reverberation: the superficial layers echo again at twice their depth; in
        # the anechoic lumen these ghosts show, strongest just below the near wall
        below = np.clip(-(d_near + h_near[None, :]), 0, None)  # mm below the near-wall surface
        ghost = anat.reverb * ghost * np.exp(-below / 2.5)
        amp[lumen] = np.sqrt(amp[lumen] ** 2 + ghost[lumen] ** 2)
    labels[lumen] = LABELS["lumen"]

    # calcified plaques: bright calcium at the surface the beam meets first, shadow beneath
    for p in anat.plaques:
        if p.kind != "calcified":
            continue
        prof = plaque_profile(p, x_mm)
        cols = np.where(prof > 0.35 * p.height_mm)[0]
        if cols.size == 0:
            continue
        region = plaque_mask[:, cols]
        first = np.where(region.any(0), region.argmax(0), H)
        rows = np.arange(H)[:, None]
        calc = (rows >= first[None, :]) & (rows < first[None, :] + int(round(0.8 / dz)))
        shadow = rows >= first[None, :] + int(round(0.8 / dz))
        sub = amp[:, cols]
        sub[shadow] *= 0.12
        sub[calc] = 3.2
        amp[:, cols] = sub
    return amp, labels, plaque_mask


def imt_mean_mm(age, vd):
    """Mean far-wall IMT (mm) at ``age`` and damage ``vd``: 0.5 mm at 35, +0.0875 mm per decade,
    +0.07 mm per SD of damage (before the subject's own SD of 0.05 mm; clipped to 0.35-1.3)."""
    return 0.5 + 0.00875 * (age - 35) + 0.07 * vd


def plaque_rate(age, vd):
    """Poisson mean of the plaques in one imaged segment (at most 3 are drawn)."""
    return np.exp(-0.6 + 0.05 * (age - 55) + 0.55 * vd)


def carotid_markers(rng: np.random.Generator, age, vd, sides: int = 2) -> dict:
    """Per-subject plaque area (mm², mean per side) and far-wall IMT (mm) drawn from the same
    laws as :func:`random_anatomy` without rendering an image (what ``make validate`` uses):
    ``plaque_area_mm2``, ``any_plaque``, ``imt_mm``."""
    age, vd = np.asarray(age, float), np.asarray(vd, float)
    n = len(age)
    imt = np.clip(imt_mean_mm(age, vd)[:, None] + rng.normal(0, 0.05, (n, sides)), 0.35, 1.3).mean(1)
    counts = np.minimum(rng.poisson(plaque_rate(age, vd)[:, None], (n, sides)), 3)
    area = np.zeros((n, sides))
    for k in range(3):  # a dome of length U(5, 16) mm and height Gamma(4, 0.35) + 0.2 vd, ~0.6 of its box
        has = counts > k
        length = rng.uniform(5, 16, (n, sides))
        height = np.clip(rng.gamma(4, 0.35, (n, sides)) + 0.2 * vd[:, None], 0.8, 3.5)
        area += has * 0.6 * length * height
    area = area.mean(1)
    return {"plaque_area_mm2": area, "any_plaque": area > 0, "imt_mm": imt}


def random_anatomy(
    rng: np.random.Generator,
    age: float = 60.0,
    vd: float = 0.0,
    n_plaques: int | None = None,
    depth_mm: float = 40.0,
    width_mm: float = 50.0,
    male: bool | None = None,
    plaque_mix: dict[str, float] | None = None,
    p_irregular: float = 0.0,
    vd_pattern: str = "global",
    vd_signal: float = 1.0,
) -> Anatomy:
    """An anatomy whose IMT, plaque burden and perivascular tissue follow age and damage ``vd``.

    ``plaque_mix`` gives each kind's probability (default :data:`DEFAULT_PLAQUE_MIX`);
    ``p_irregular`` the share of irregular (ulcerated, heterogeneous) plaques.
    ``vd_pattern``: ``"global"`` (damage brightens and roughens all perivascular tissue: the
    simulator before version 6) or ``"local"`` (perivascular echogenicity independent of damage;
    damage shows as the structure of the texture of the tissue next to the far wall, of strength
    ``vd_signal``: :func:`damage_texture`)."""
    mix = plaque_mix or DEFAULT_PLAQUE_MIX
    unknown = set(mix) - set(PLAQUE_KINDS)
    if unknown:
        raise ValueError(f"unknown plaque kinds {sorted(unknown)}; choose from {PLAQUE_KINDS}")
    male = bool(rng.random() < 0.5) if male is None else male
    imt = imt_mean_mm(age, vd) + rng.normal(0, 0.05)
    imt = float(np.clip(imt, 0.35, 1.3))
    radius = float(np.clip(rng.normal(3.15 + 0.2 * male + 0.004 * (age - 55) + 0.05 * vd, 0.2), 2.4, 4.2))
    if n_plaques is None:
        lam = plaque_rate(age, vd)
        n_plaques = int(min(rng.poisson(lam), 3))
    plaques, used = [], []
    for _ in range(n_plaques):
        for _try in range(10):
            x = float(rng.uniform(0.15, 0.85) * width_mm)
            length = float(rng.uniform(5, 16))
            if all(abs(x - u) > (length + ul) / 2 + 1 for u, ul in used):
                break
        used.append((x, length))
        plaques.append(
            Plaque(
                x_mm=x,
                length_mm=length,
                height_mm=float(np.clip(rng.gamma(4, 0.35) + 0.2 * vd, 0.8, 3.5)),
                wall="far" if rng.random() < 0.7 else "near",
                kind=str(rng.choice(list(mix), p=np.asarray(list(mix.values())) / sum(mix.values()))),
            )
        )
        if p_irregular > 0:  # drawn only when asked for, so default anatomies keep their draws
            plaques[-1].irregular = bool(rng.random() < p_irregular)
            plaques[-1].seed = int(rng.integers(2**31))
    glob = vd_pattern == "global"
    laminar = damage_texture(vd, vd_signal) if vd_pattern == "local" else None
    echo_db = 3.0 * vd_signal * vd if vd_pattern == "local" else 0.0  # echogenic periadventitia
    return Anatomy(
        depth_mm=depth_mm,
        width_mm=width_mm,
        center_mm=float(rng.uniform(0.38, 0.55) * depth_mm),
        tilt=float(rng.normal(0, 0.04)),
        bend_mm=float(rng.uniform(0, 0.8)),
        bend_period_mm=float(rng.uniform(40, 90)),
        lumen_radius_mm=radius,
        imt_far_mm=imt,
        imt_near_mm=float(imt * rng.uniform(0.85, 1.0)),
        adventitia_mm=float(rng.uniform(0.5, 0.9)),
        plaques=plaques,
        # (drawn in version 5's order, so the plaque database's images are unchanged)
        peri_echo=float(np.clip(0.6 + 0.2 * vd * glob + rng.normal(0, 0.08), 0.3, 1.2)),
        peri_texture=float(np.clip(0.3 + 0.1 * vd * glob + rng.normal(0, 0.04), 0.1, 0.7)),
        peri_far_laminar=laminar,
        peri_far_echo_db=float(np.clip(echo_db, -10.0, 10.0)),
        skin_mm=float(rng.uniform(0.8, 1.5)),
        fat_mm=float(rng.uniform(2, 6)),
        muscle_mm=float(rng.uniform(3, 7)),
    )


def softplus(x: float) -> float:
    return float(np.log1p(np.exp(-abs(x))) + max(x, 0.0))


def damage_texture(vd: float, vd_signal: float = 1.0) -> float:
    """How laminar (0 isotropic .. 1 striations parallel to the wall) the far-wall perivascular
    texture is at damage ``vd`` (standard normal): ``logistic(1.5 * vd_signal * vd)``, so 0.05,
    0.5 and 0.95 at vd = -2, 0, +2 for ``vd_signal = 1``; 0.5 for everyone at ``vd_signal = 0``
    (no information). Its grey-level histogram is the same at every value."""
    return float(1.0 / (1.0 + np.exp(-1.5 * vd_signal * vd)))
