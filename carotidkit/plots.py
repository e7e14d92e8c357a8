"""One figure style for every notebook: galleries, animations, survival curves.

Matplotlib is imported lazily; every axis that carries a quantity says its unit.
"""

from __future__ import annotations

import functools
import re

import numpy as np

_EXPORT: dict = {"dir": None, "n": 0, "depth": 0}


def export_to(folder) -> None:
    """Save every figure and animation drawn from now on into ``folder`` (cleared first) as
    ``NN_<plot>[_<args>].svg``, ``.pdf`` and 300-dpi ``.png`` (animations as ``.webp``); ``None``
    stops. The notebooks' settings call does this for the paper bundle; scripts are unaffected."""
    import shutil
    from pathlib import Path

    _EXPORT["n"] = 0
    _EXPORT["dir"] = None if folder is None else Path(folder)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True, exist_ok=True)


def _export_name(stem: str) -> str | None:
    if _EXPORT["dir"] is None:
        return None
    _EXPORT["n"] += 1
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem).strip("_")
    return f"{_EXPORT['n']:02d}_{safe}"[:80]


def _export_movie(mv) -> None:
    name = _export_name(mv.name)
    if name:
        from . import io

        io.write_bytes(_EXPORT["dir"] / f"{name}.webp", mv.data)


def _export_figure(fig, stem: str) -> None:
    name = _export_name(stem)
    if name is None:
        return
    from . import io

    # zlib level 1 for the 300-dpi PNG: lossless like the default, about half the time on
    # image-heavy figures (galleries, maps) and no larger there
    for ext, kw in (("svg", {}), ("pdf", {}), ("png", {"dpi": 300, "pil_kwargs": {"compress_level": 1}})):
        with io.atomic_path(_EXPORT["dir"] / f"{name}.{ext}") as tmp:
            fig.savefig(tmp, format=ext, bbox_inches="tight", **kw)


def _exported(fn):
    """Decorator: the figure a plot function returns is also saved for the bundle (see
    :func:`export_to`), named after the function and its short string arguments."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _EXPORT["depth"] += 1  # a plot drawn by another plot: saved once
        try:
            fig = fn(*args, **kwargs)
        finally:
            _EXPORT["depth"] -= 1
        from matplotlib.figure import Figure

        if isinstance(fig, Figure) and _EXPORT["dir"] is not None and _EXPORT["depth"] == 0:
            words = [a for a in list(args) + list(kwargs.values()) if isinstance(a, str) and len(a) <= 24]
            _export_figure(fig, "_".join([fn.__name__, *words]))
        return fig

    return wrapper


PALETTE = {
    "plaque": "#f2c94c",
    "overlay": "#eb5757",
    "pred": "#2d9cdb",
    "ok": "#27ae60",
    "male": "#2f80ed",
    "female": "#bb6bd9",
}


#: Okabe & Ito's colour-blind-safe qualitative palette (every line plot's colour cycle)
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


def style():
    """Apply carotidkit's matplotlib style (call once at the top of a notebook): the colour-blind-
    safe Okabe–Ito cycle, no text under 8 pt."""
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams.update(
        {
            "axes.prop_cycle": cycler(color=OKABE_ITO),
            "legend.fontsize": 8,
            "xtick.labelsize": 8,
            "ytick.labelsize": 8,
            "svg.fonttype": "none",
            "pdf.fonttype": 42,
            "figure.dpi": 90,
            "savefig.dpi": 110,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.25,
            "font.size": 10,
            "axes.titlesize": 10,
            "image.cmap": "gray",
            "animation.embed_limit": 20,
        }
    )


def _contour(ax, mask, color, lw=1.0):
    if mask is not None and np.asarray(mask).any():
        ax.contour(np.asarray(mask, float), levels=[0.5], colors=[color], linewidths=lw)


@_exported
def gallery(images, masks=None, overlays=None, preds=None, titles=None, ncols: int = 4, size: float = 2.6):
    """Grid of grayscale images with optional plaque (yellow), overlay (red), prediction (blue) contours."""
    import matplotlib.pyplot as plt

    n = len(images)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(images[k], cmap="gray", vmin=0, vmax=255)
        if overlays is not None:
            _contour(ax, overlays[k], PALETTE["overlay"], 0.6)
        if masks is not None:
            _contour(ax, masks[k], PALETTE["plaque"])
        if preds is not None:
            _contour(ax, preds[k], PALETTE["pred"])
        if titles is not None:
            ax.set_title(titles[k], fontsize=8)
    fig.tight_layout()
    return fig


def _heat_rgb(clip, cmap: str = "inferno"):
    """A derived map (attribution, 0-255) as RGB frames in ``cmap`` (brighter = more)."""
    import matplotlib as mpl

    lut = (mpl.colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    return lut[np.asarray(clip, np.uint8)]


def movie_bytes(frames, fps: float, quality: int = 80) -> bytes:
    """``[T, H, W(, 3)]`` uint8 frames as one looping animated WebP (lossy, ``quality`` 0-100):
    every browser plays it offline, and it is a few percent of the size of PNG frames."""
    import io as _io

    from PIL import Image

    frames = np.asarray(frames, np.uint8)
    imgs = [Image.fromarray(f) for f in frames]
    buf = _io.BytesIO()
    imgs[0].save(
        buf,
        format="WEBP",
        save_all=True,
        append_images=imgs[1:],
        duration=int(round(1000 / max(fps, 1e-3))),
        loop=0,
        quality=quality,
        method=4,
    )
    return buf.getvalue()


class Movie:
    """An animation on a report page: one animated WebP with a caption per panel (and a colour
    scale when a panel is a derived map). ``data``: the WebP bytes (the bundle saves them)."""

    def __init__(self, data: bytes, width_px: int, titles, heat: bool, name: str = "movie"):
        self.data, self.width_px, self.titles, self.heat, self.name = data, width_px, list(titles or []), heat, name
        self.alt = ""

    def _repr_html_(self) -> str:
        import base64
        import html as _html

        src = "data:image/webp;base64," + base64.b64encode(self.data).decode()
        labels = "".join(f'<span style="flex:1;text-align:center">{_html.escape(str(t))}</span>' for t in self.titles)
        scale = (
            '<div style="display:flex;align-items:center;gap:6px;font-size:12px;margin-top:4px">'
            'attribution: low<span style="display:inline-block;width:160px;height:10px;'
            'background:linear-gradient(90deg,#000004,#57106e,#bc3754,#f98e09,#fcffa4)"></span>high</div>'
            if self.heat
            else ""
        )
        alt = _html.escape(self.alt or "animation of " + ", ".join(map(str, self.titles)))
        return (
            f'<figure class="ck-movie" style="margin:0;max-width:100%;width:{self.width_px}px">'
            f'<div style="display:flex;font-size:12px">{labels}</div>'
            f'<img src="{src}" alt="{alt}" style="width:100%;image-rendering:pixelated">{scale}</figure>'
        )


def animate_clips(clips, titles=None, fps: float = 25.0, size: float = 2.4, redact=True, heat=None):
    """Side-by-side animation of cine loops (``[T, H, W]`` uint8 each) for a report page: one
    looping animated WebP (:class:`Movie`), playable offline, about 1-2 % of the bytes of
    matplotlib's PNG-frame player.

    Every loop is redacted to its scan area first (:func:`carotidkit.clean.redact_clip`), as the
    plaque gallery is: burned-in names and dates never reach a report page. ``redact`` is one
    flag or one per clip (``False`` for derived maps such as attributions); ``heat`` (one flag per
    clip, default: the unredacted ones when ``redact`` is a list) draws a clip in a colour map
    with its scale beneath.
    """
    from .imaging import redact_clip

    flags = [redact] * len(clips) if isinstance(redact, bool) else list(redact)
    if heat is None:  # per-clip redaction flags mark the derived maps: those are drawn as heat
        heat = [False] * len(flags) if isinstance(redact, bool) else [not f for f in flags]
    clips = [redact_clip(c) if f else np.asarray(c) for c, f in zip(clips, flags)]
    T = min(len(c) for c in clips)
    H = max(c.shape[1] for c in clips)
    panels = []
    for c, h in zip(clips, heat):
        c = np.asarray(c[:T], np.uint8)
        pad = np.zeros((T, H, c.shape[2]), np.uint8)
        pad[:, : c.shape[1]] = c
        rgb = _heat_rgb(pad) if h else np.repeat(pad[..., None], 3, axis=-1)
        panels += [rgb, np.full((T, H, max(2, H // 32), 3), 255, np.uint8)]
    frames = np.concatenate(panels[:-1], axis=2)
    width = int(size * 90 * len(clips))
    mv = Movie(movie_bytes(frames, fps), width, titles or [], any(heat))
    _export_movie(mv)
    return mv


@_exported
def km_overview(cohort, endpoints=("mi", "cardiac_death", "death"), by: str | None = "sex"):
    """Kaplan-Meier cumulative incidence (1 - S) per endpoint, optionally by a grouping column."""
    import matplotlib.pyplot as plt
    from lifelines import KaplanMeierFitter

    endpoints = [ep for ep in endpoints if f"{ep}_event" in cohort and f"{ep}_years" in cohort]
    if not endpoints:
        return None
    fig, axes = plt.subplots(1, len(endpoints), figsize=(4 * len(endpoints), 3.2), squeeze=False)
    for ax, ep in zip(axes.flat, endpoints):
        groups = [(None, cohort)] if by is None else list(cohort.groupby(by))
        for level, sub in groups:
            km = KaplanMeierFitter().fit(
                sub[f"{ep}_years"], sub[f"{ep}_event"], label=str(level) if level is not None else "all"
            )
            km.plot_cumulative_density(ax=ax, ci_show=True, color=PALETTE.get(str(level)))
        ax.set_title(ep.replace("_", " "))
        ax.set_xlabel("years since baseline")
        ax.set_ylabel("cumulative incidence (fraction)")
    fig.tight_layout()
    return fig


@_exported
def bland_altman(reference, measured, ax=None, unit: str = "mm²", label: str = "plaque area"):
    """Bland-Altman plot of ``measured - reference`` against their mean; returns (bias, loa_low, loa_high)."""
    import matplotlib.pyplot as plt

    reference, measured = np.asarray(reference, float), np.asarray(measured, float)
    mean, diff = (reference + measured) / 2, measured - reference
    bias, sd = float(diff.mean()), float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
    ax = ax or plt.subplots(figsize=(4.5, 3.5))[1]
    ax.scatter(mean, diff, s=12, alpha=0.7)
    for y, ls in ((bias, "-"), (bias - 1.96 * sd, "--"), (bias + 1.96 * sd, "--")):
        ax.axhline(y, color="k", ls=ls, lw=1)
    ax.set_xlabel(f"mean of masks and prediction, {label} ({unit})")
    ax.set_ylabel(f"prediction − mask ({unit})")
    return bias, bias - 1.96 * sd, bias + 1.96 * sd


# ----------------------------------------------------------------------------- survival (05)


def _nothing(msg: str):
    """A small figure that says why there is nothing to draw (e.g. too few events)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, msg, ha="center", va="center", fontsize=10)
    return fig


@_exported
def km_groups(res, endpoint: str, by: str):
    """Kaplan-Meier cumulative incidence per group with a numbers-at-risk table below."""
    import matplotlib.pyplot as plt

    if res.km.empty or not ((res.km.endpoint == endpoint) & res.km.by.str.startswith(by)).any():
        return _nothing(f"{endpoint}: too few events for Kaplan-Meier curves by {by}")
    by = res.km.by[(res.km.endpoint == endpoint) & res.km.by.str.startswith(by)].iloc[0]
    km = res.km[(res.km.endpoint == endpoint) & (res.km.by == by)]
    risk = res.at_risk[(res.at_risk.endpoint == endpoint) & (res.at_risk.by == by)]
    tests = res.km_tests[(res.km_tests.endpoint == endpoint) & (res.km_tests.by == by)]
    fig, (ax, tab) = plt.subplots(2, 1, figsize=(6, 5), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    colors = plt.cm.viridis(np.linspace(0.1, 0.9, km.group.nunique()))
    for col, (g, sub) in zip(colors, km.groupby("group", sort=False)):
        ax.step(sub.time, 100 * sub.cum_incidence, where="post", color=col, label=g)
        ax.fill_between(sub.time, 100 * sub.ci_low, 100 * sub.ci_high, step="post", color=col, alpha=0.12)
    t = tests.iloc[0] if len(tests) else None
    title = f"{endpoint.replace('_', ' ')} by {by}"
    if t is not None:
        from .findings import fmt_p

        title += f"\nlog-rank p = {fmt_p(t.logrank_p)}, trend p = {fmt_p(t.trend_p)}"
    competing = not res.cif.empty and (res.cif.endpoint == endpoint).any()
    ylabel = "1 − Kaplan–Meier (%)\n(overstates risk: competing death)" if competing else "cumulative incidence (%)"
    ax.set(title=title, ylabel=ylabel)
    ax.legend(fontsize=8)
    # numbers at risk under the curves, each under its time tick (the axes share x)
    tab.set_yticks([])
    for side in ("left", "right", "top"):
        tab.spines[side].set_visible(False)
    tab.grid(False)
    tab.set_xlabel("years since baseline")
    if len(risk):
        cols = [c for c in risk.columns if re.fullmatch(r"\d+(\.\d+)?y", str(c))]
        times = [float(c[:-1]) for c in cols]
        groups = risk.group.tolist()
        tab.set_ylim(-0.5, len(groups) - 0.5)
        for k, (g, row) in enumerate(zip(groups, risk[cols].to_numpy())):
            yy = len(groups) - 1 - k
            tab.annotate(str(g), (-0.01, yy), xycoords=("axes fraction", "data"), ha="right", va="center", fontsize=8)
            for tt, n in zip(times, row):
                tab.text(tt, yy, f"{int(n)}", ha="center", va="center", fontsize=8)
        tab.set_title("number at risk", fontsize=8, loc="left")
        ax.set_xticks(times)
    fig.tight_layout()
    return fig


@_exported
def flow_diagram(flow):
    """Participant flow (TRIPOD+AI 20a): the selection steps top-down with their n and, beside
    each arrow, who was excluded and why; the endpoint analyses branch side by side at the end."""
    import matplotlib.pyplot as plt

    steps = flow.reset_index(drop=True)
    branch = steps.endpoint.fillna("").astype(str).ne("")  # the per-endpoint analyses branch off
    ends, chain = steps[branch], steps[~branch]
    rows = len(chain) + (1 if len(ends) else 0)
    fig, ax = plt.subplots(figsize=(8, 1.1 * rows + 0.2))
    ax.axis("off")
    ax.set_xlim(0, 12)
    ax.set_ylim(-0.6, rows - 0.4)
    box = {"boxstyle": "round,pad=0.4", "fc": "#eef4fb", "ec": "#0072B2"}
    note = {"boxstyle": "round,pad=0.3", "fc": "#fff7e6", "ec": "#E69F00"}
    arrow = {"arrowstyle": "->", "color": "#555"}

    def excluded(r, x, y):
        if int(r.excluded) > 0:
            ax.text(x, y, f"excluded {int(r.excluded):,}:\n{r.reason}", ha="left", va="center", fontsize=8, bbox=note)

    for k, r in enumerate(chain.itertuples()):
        y = rows - 1 - k
        ax.text(4, y, f"{r.step}\nn = {int(r.n):,}", ha="center", va="center", fontsize=9, bbox=box)
        if k > 0:
            ax.annotate("", (4, y + 0.3), (4, y + 0.7), arrowprops=arrow)
            excluded(r, 4.3, y + 0.5)
    xs = np.linspace(1.8, 10.2, len(ends)) if len(ends) > 1 else [4]
    for x, r in zip(xs, ends.itertuples()):
        label = r.step.replace(": ", ":\n", 1)
        ax.text(x, 0, f"{label}\nn = {int(r.n):,}", ha="center", va="center", fontsize=8, bbox=box)
        ax.annotate("", (x, 0.38), (4, 0.7), arrowprops=arrow)
    fig.tight_layout()
    return fig


@_exported
def cif_plot(res, endpoint: str):
    """Aalen-Johansen cumulative incidence by VD group (solid) next to 1 - KM (dotted), which
    overstates risk when a competing event removes people from risk."""
    import matplotlib.pyplot as plt

    if res.cif.empty or not (res.cif.endpoint == endpoint).any():
        return _nothing(f"{endpoint}: too few events for cumulative incidence curves")
    cif = res.cif[res.cif.endpoint == endpoint]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    colors = plt.cm.viridis(np.linspace(0.1, 0.9, max(cif.group.nunique(), 1)))
    for col, (g, sub) in zip(colors, cif.groupby("group", sort=False)):
        ax.step(sub.time, 100 * sub.aalen_johansen, where="post", color=col, label=f"{g} (Aalen-Johansen)")
        ax.step(sub.time, 100 * sub.one_minus_km, where="post", color=col, ls=":", lw=1)
    ax.set(
        title=f"{endpoint.replace('_', ' ')}: cumulative incidence with competing death",
        xlabel="years since baseline",
        ylabel="cumulative incidence (%)",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@_exported
def forest(table, label_cols=("endpoint", "model"), value: str = "hr", xlabel: str = "hazard ratio per SD of VD"):
    """Forest plot of ratios with 95 % CIs (log scale); one row per table row."""
    import matplotlib.pyplot as plt

    t = table.reset_index(drop=True)
    if t.empty:
        return _nothing("no fitted models (too few events)")
    fig, ax = plt.subplots(figsize=(6, 0.32 * len(t) + 1))
    y = np.arange(len(t))[::-1]
    ax.errorbar(t[value], y, xerr=[t[value] - t.ci_low, t.ci_high - t[value]], fmt="s", color="k", ms=4, capsize=2)
    ax.axvline(1, color="grey", lw=1)
    ax.set_xscale("log")
    _plain_ratio_ticks(ax, float(np.nanmin(t.ci_low)), float(np.nanmax(t.ci_high)))
    ax.set_yticks(y)
    ax.set_yticklabels([" · ".join(str(r[c]) for c in label_cols) for _, r in t.iterrows()], fontsize=8)
    ax.set_xlabel(xlabel)
    for yy, (_, r) in zip(y, t.iterrows()):  # the numbers beside each point, as journals print them
        ax.annotate(
            f"{r[value]:.2f} ({r.ci_low:.2f}–{r.ci_high:.2f})",
            (1.02, yy),
            xycoords=("axes fraction", "data"),
            va="center",
            fontsize=8,
        )
    head = f"{value.upper()} (95 % CI)"  # HR, or SHR for subdistribution hazards
    ax.annotate(head, (1.02, 1.0), xycoords="axes fraction", va="bottom", fontsize=8, weight="bold")
    fig.tight_layout()
    return fig


def _plain_ratio_ticks(ax, lo: float, hi: float) -> None:
    """Ratio axis (log scale) labelled 0.5, 1, 2 rather than 5×10⁻¹, 10⁰."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    cands = [0.1, 0.2, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 10]
    lo, hi = (lo, hi) if np.isfinite(lo) and np.isfinite(hi) and lo > 0 else (0.5, 2)
    ticks = [c for c in cands if lo / 1.2 <= c <= hi * 1.2] or [1]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


@_exported
def calibration_plot(res, endpoint: str):
    """Observed vs predicted risk at the horizon per model (Austin's flexible calibration curve:
    a Cox or Fine-Gray model on rcs(cloglog(predicted))); the diagonal is perfect."""
    import matplotlib.pyplot as plt

    if res.calibration_curves.empty or not (res.calibration_curves.endpoint == endpoint).any():
        return _nothing(f"{endpoint}: too few events for calibration")
    cc = res.calibration_curves[res.calibration_curves.endpoint == endpoint]
    fig, ax = plt.subplots(figsize=(4.6, 4))
    for m, sub in cc.groupby("model", sort=False):
        ax.plot(100 * sub.predicted, 100 * sub.observed, label=m)
    lim = 100 * max(cc.predicted.max(), cc.observed.max()) if len(cc) else 1
    ax.plot([0, lim], [0, lim], "k--", lw=1)
    ax.set(
        xlabel=f"predicted {res.settings['horizon_years']:g}-year risk (%)",
        ylabel="observed risk (%, flexible calibration model)",
        title=endpoint.replace("_", " "),
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@_exported
def cine_redaction(example):
    """A cine frame and the burned-in overlays masked before caching (red): look for text, depth
    ticks and calipers covered, and tissue left alone."""
    import matplotlib.pyplot as plt

    if example is None:
        return _nothing("no loop carried burned-in overlays (simulated loops have none)")
    frame, mask, title = example
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    axes[0].imshow(frame, cmap="gray", vmin=0, vmax=255)
    axes[0].set_title("as exported", fontsize=9)
    rgb = np.dstack([frame] * 3).astype(float) / 255
    rgb[mask] = [0.9, 0.1, 0.1]
    axes[1].imshow(rgb)
    axes[1].set_title(f"masked before caching ({title})", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


@_exported
def ph_residuals(res, endpoint: str):
    """Scaled Schoenfeld residuals against transformed time (``cox.zph``'s plot): a flat smooth
    around the fitted coefficient (dashed) means proportional hazards hold."""
    import matplotlib.pyplot as plt
    from statsmodels.nonparametric.smoothers_lowess import lowess

    r = res.ph_residuals
    if r.empty or not (r.endpoint == endpoint).any():
        return _nothing(f"{endpoint}: no PH test")
    r = r[r.endpoint == endpoint]
    terms = [c for c in r.columns if c not in ("time", "g_time", "endpoint")]
    tab = res.ph[(res.ph.endpoint == endpoint)].set_index("term")
    fig, axes = plt.subplots(1, len(terms), figsize=(4.2 * len(terms), 3.4), squeeze=False)
    for ax, term in zip(axes[0], terms):
        ax.scatter(r.g_time, r[term], s=8, alpha=0.5, color="0.4")
        sm = lowess(r[term], r.g_time, frac=0.6, return_sorted=True)
        ax.plot(sm[:, 0], sm[:, 1], color="C3", lw=2)
        ax.axhline(float(r[term].mean()), color="k", ls="--", lw=1)
        p = tab.loc[term, "p"] if term in tab.index else float("nan")
        ax.set(
            xlabel=f"g(time), transform = {tab['transform'].iloc[0]}",
            ylabel=f"beta(t) for {term}",
            title=f"{term}: p = {p:.3f}",
        )
    fig.tight_layout()
    return fig


@_exported
def decision_curve(res, endpoint: str):
    """Net benefit against the treatment threshold: a model helps where it beats both references."""
    import matplotlib.pyplot as plt

    if res.decision.empty or not (res.decision.endpoint == endpoint).any():
        return _nothing(f"{endpoint}: too few events for decision curves")
    dc = res.decision[res.decision.endpoint == endpoint]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for m, sub in dc.groupby("model", sort=False):
        ax.plot(
            100 * sub.threshold,
            100 * sub.net_benefit,
            label=m,
            ls="--" if m.startswith("treat") else "-",
            lw=1 if m.startswith("treat") else 1.6,
        )
    top = dc.net_benefit.max() if len(dc) else 0.01
    ax.set_ylim(-0.2 * 100 * top, 1.1 * 100 * top)
    ax.set(xlabel="risk threshold (%)", ylabel="net benefit (per 100 people)", title=endpoint.replace("_", " "))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@_exported
def c_index_plot(res):
    """Harrell's C (95 % bootstrap CI) of SCORE2, VD and both, per endpoint."""
    import matplotlib.pyplot as plt

    if res.discrimination.empty:
        return _nothing("too few events for discrimination")
    d = res.discrimination[res.discrimination.method == "harrell"].reset_index(drop=True)
    names = {"score2_risk": "SCORE2", "vd_z": "VD", "score2_vd_lp": "SCORE2 + VD (CV)"}
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(d) + 1))
    y = np.arange(len(d))[::-1]
    ax.errorbar(d.c_index, y, xerr=[d.c_index - d.ci_low, d.ci_high - d.c_index], fmt="o", color="k", ms=4)
    ax.axvline(0.5, color="grey", lw=1)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{r.endpoint} · {names.get(r.risk, r.risk)}" for r in d.itertuples()], fontsize=8)
    ax.set_xlabel("Harrell's C (0.5 = chance)")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- video VD (03)


@_exported
def learning_curves(log, x="epoch", panels=(("train_loss", "val_loss"), ("val_auc",)), by="fold"):
    """Training/validation curves per fold (or per backbone): loss and validation AUROC/Dice."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.2), squeeze=False)
    for ax, cols in zip(axes.flat, panels):
        for key, sub in log.groupby(by):
            for c in cols:
                ax.plot(
                    sub[x],
                    sub[c],
                    ls="--" if c.startswith("val") and len(cols) > 1 else "-",
                    label=f"{by} {key} {c.replace('_', ' ')}",
                )
        ax.set_xlabel(x)
        ax.set_ylabel(" / ".join(c.replace("_", " ") for c in cols))
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@_exported
def roc_plot(res):
    """Out-of-fold ROC curve of VD for hypertension, with AUROC and its bootstrap CI."""
    import matplotlib.pyplot as plt

    m = res.metrics.set_index("metric")
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(res.roc.fpr, res.roc.tpr, color="k")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.set(
        xlabel="1 − specificity",
        ylabel="sensitivity",
        title=f"AUROC {m.estimate['auc']:.3f} [{m.ci_low['auc']:.3f}, {m.ci_high['auc']:.3f}]",
    )
    fig.tight_layout()
    return fig


@_exported
def vd_panels(res):
    """Calibration of the hypertension probability (deciles), VD by hypertension and by age decade."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    c = res.calibration
    axes[0].plot(c.predicted, c.observed, "o-")
    axes[0].plot([0, 1], [0, 1], "k--", lw=1)
    axes[0].set(
        xlabel="predicted P(hypertension)", ylabel="observed share with hypertension", title="calibration (deciles)"
    )
    v = res.vd.assign(age_decade=(res.vd.age_years // 10 * 10).astype(int))
    for ax, g, lab in ((axes[1], "label", "hypertension (0/1)"), (axes[2], "age_decade", "age decade (years)")):
        levels = sorted(v[g].dropna().unique())
        ax.boxplot([v.loc[v[g] == lv, "vd_z"] for lv in levels], tick_labels=[str(lv) for lv in levels])
        ax.set(xlabel=lab, ylabel="VD (SD units)")
    fig.tight_layout()
    return fig


@_exported
def vd_vs_truth(res):
    """Scatter of out-of-fold VD against the simulator's latent vascular damage."""
    import matplotlib.pyplot as plt

    if "vd_true" not in res.vd:
        return None
    m = res.metrics.set_index("metric").estimate
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.scatter(res.vd.vd_true, res.vd.vd_z, s=5, alpha=0.4, c=res.vd.label, cmap="coolwarm")
    ax.set(
        xlabel="simulated vascular damage vd_true (SD units)",
        ylabel="VD from video (SD units)",
        title=f"Spearman {m['spearman_vd_true']:.2f}, partial {m['partial_spearman_vd_true']:.2f}",
    )
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- XAI (04)


def _region_bars(e, by: str, title: str, label=lambda v: str(v).replace("_", " ")):
    """Enrichment per anatomical region, one bar per value of column ``by``, with 95 % CIs."""
    import matplotlib.pyplot as plt

    regions = [
        r for r in ("lumen", "near_wall", "far_wall", "plaque", "perivascular", "background") if r in set(e.region)
    ]
    groups = list(dict.fromkeys(e[by]))
    fig, ax = plt.subplots(figsize=(7, 3.4))
    w = 0.8 / max(len(groups), 1)
    for k, g in enumerate(groups):
        d = e[e[by] == g].set_index("region").reindex(regions)
        x = np.arange(len(regions)) + (k - (len(groups) - 1) / 2) * w
        ax.bar(x, d.enrichment, w, label=label(g))
        ax.errorbar(x, d.enrichment, yerr=[d.enrichment - d.ci_low, d.ci_high - d.enrichment], fmt="none", c="k", lw=1)
    ax.axhline(1, color="k", lw=1, ls="--")
    ax.set_xticks(np.arange(len(regions)))
    ax.set_xticklabels([r.replace("_", " ") for r in regions])
    ax.set(ylabel="attribution share / area share", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@_exported
def enrichment_plot(res, phase: str = "whole cycle"):
    """Attribution enrichment per anatomical region and method (1 = no preference), 95 % CIs."""
    baseline = res.settings.get("baseline")
    ref = f"; IG/Occlusion reference: {baseline} frame" if baseline else ""
    return _region_bars(
        res.enrichment[res.enrichment.phase == phase], "method", f"where the model looks ({phase}{ref})"
    )


@_exported
def baseline_sensitivity_plot(res):
    """Integrated Gradients' whole-cycle enrichment under each reference input (anechoic vs mean
    grey): regions whose ranking survives the change do not depend on the choice."""
    if res.baseline_sensitivity.empty:
        return None
    return _region_bars(
        res.baseline_sensitivity,
        "baseline",
        "Integrated Gradients under two reference inputs (whole cycle)",
        label=lambda b: f"{b} reference",
    )


@_exported
def sanity_plot(res):
    """Rank correlation of attributions with the trained model's as layers are randomised top-down
    (signed maps, absolute maps and SSIM): a map that still looks the same after full
    randomisation does not explain the model."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for k, (m, d) in enumerate(res.sanity.groupby("method", sort=False)):
        name, c = m.replace("_", " "), f"C{k}"
        ax.plot(d.randomised_through, d.spearman, "o-", color=c, label=f"{name} (Spearman, signed)")
        if "spearman_abs" in d:
            ax.plot(d.randomised_through, d.spearman_abs, "^:", color=c, label=f"{name} (Spearman, |map|)")
        ax.plot(d.randomised_through, d.ssim, "s--", color=c, alpha=0.6, label=f"{name} (SSIM, |map|)")
    ax.axhline(0.3, color="grey", lw=1, ls=":")
    ax.set(
        xlabel="randomised down to (cumulative, from the output)",
        ylabel="similarity to trained-model map",
        ylim=(-0.2, 1.05),
    )
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@_exported
def association_plot(res):
    """Adjusted regression effect (per SD) next to mean |SHAP| for each predictor of VD."""
    import matplotlib.pyplot as plt

    t = res.associations.sort_values("shap_mean_abs")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 0.28 * len(t) + 1.2), sharey=True)
    y = np.arange(len(t))
    a.errorbar(t.beta_per_sd, y, xerr=[t.beta_per_sd - t.ci_low, t.ci_high - t.beta_per_sd], fmt="o", c="k", ms=3)
    a.axvline(0, color="grey", lw=1)
    a.set_yticks(y)
    a.set_yticklabels(t.term, fontsize=8)
    a.set_xlabel("adjusted effect on VD (SD of VD per SD / per yes)")
    b.barh(y, t.shap_mean_abs, color="#2d9cdb")
    b.set_xlabel("mean |SHAP| (SD of VD)")
    fig.tight_layout()
    return fig


@_exported
def shap_beeswarm(res, max_display: int = 10):
    """SHAP beeswarm of the gradient-boosted VD model (shap's own plot)."""
    import matplotlib.pyplot as plt
    import shap

    shap.summary_plot(res.shap_values.to_numpy(), res.shap_data, max_display=max_display, show=False)
    return plt.gcf()


def attribution_movies(res):
    """Loops with their Integrated-Gradients attribution beside them (brighter = more attribution)."""
    clips, titles = [], []
    for title, (clip, heat) in res.movies.items():
        clips += [clip, heat]
        titles += [title, "attribution"]
    return animate_clips(clips, titles=titles, fps=6, redact=[k % 2 == 0 for k in range(len(clips))])


@_exported
def unet_gradcam(res):
    """Grad-CAM of each U-Net backbone and of the ensemble on test images with and without plaque
    (yellow: annotated plaque); warm colours mark the pixels that drove the plaque prediction."""
    import matplotlib.pyplot as plt

    cam = res.unet_cam
    if not cam:
        return _nothing("no U-Net ensemble in this run (run 02 first)")
    names = list(cam["maps"])
    n = len(cam["images"])
    fig, axes = plt.subplots(n, len(names), figsize=(2.1 * len(names), 2.1 * n), squeeze=False)
    for i in range(n):
        for j, name in enumerate(names):
            ax = axes[i, j]
            ax.imshow(cam["images"][i], cmap="gray", vmin=0, vmax=255)
            ax.imshow(cam["maps"][name][i], cmap="inferno", alpha=0.45, vmin=0, vmax=1)
            _contour(ax, cam["masks"][i], PALETTE["plaque"])
            ax.axis("off")
            if i == 0:
                ax.set_title(name, fontsize=8)
        axes[i, 0].text(
            -0.05,
            0.5,
            "plaque" if cam["has_plaque"][i] else "plaque-free",
            transform=axes[i, 0].transAxes,
            rotation=90,
            va="center",
            ha="right",
            fontsize=8,
        )
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- helpers moved out of 00/02


@_exported
def truth_panels(truth):
    """Simulator truth: IMT and distension against vd_true, and vd_true by hypertension."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    axes[0].scatter(truth.vd_true, truth.imt_far_mm, s=4, alpha=0.4)
    axes[0].set(xlabel="vd_true (SD)", ylabel="far-wall IMT (mm)")
    axes[1].scatter(truth.vd_true, 100 * truth.distension, s=4, alpha=0.4)
    axes[1].set(xlabel="vd_true (SD)", ylabel="distension (%)")
    axes[2].boxplot([truth.vd_true[truth.hypertension == 0], truth.vd_true[truth.hypertension == 1]])
    axes[2].set_xticks([1, 2], ["no hypertension", "hypertension"])
    axes[2].set_ylabel("vd_true (SD)")
    fig.tight_layout()
    return fig


@_exported
def disagreement_maps(images, dis, pick, ids):
    """Share of models disagreeing with the vote per pixel (0 = unanimous) on chosen test images."""
    import matplotlib.pyplot as plt

    show = list(pick)[:3]
    n = max(len(show), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), squeeze=False)
    im = None
    for ax, i in zip(axes.flat, show):
        ax.imshow(images[i], cmap="gray")
        im = ax.imshow(dis[i], cmap="magma", alpha=0.6, vmin=0, vmax=0.5)
        ax.axis("off")
        ax.set_title(f"id {ids[i]}", fontsize=8)
    if im is not None:
        cb = fig.colorbar(im, ax=list(axes.flat), fraction=0.03, pad=0.02)
        cb.set_label("share of models disagreeing with the vote", fontsize=8)
    return fig


@_exported
def before_after(g: dict, model_size_px: int):
    """Export (scan area, red: detected overlays) beside the cleaned model input (yellow: mask)."""
    none = [None] * len(g["ids"])
    return gallery(
        [x for ab in zip(g["before"], g["after"]) for x in ab],
        masks=[x for ab in zip(none, g["masks"]) for x in ab],
        overlays=[x for ab in zip(g["overlays"], none) for x in ab],
        titles=[t for i in g["ids"] for t in (f"{i}: export (scan area)", f"{i}: cleaned {model_size_px}px")],
    )


@_exported
def psnr_scatter(qc):
    """PSNR inside the overlays against the overlay-free truth, before vs after cleaning."""
    import matplotlib.pyplot as plt

    t = qc.dropna(subset=["psnr_before"])
    if t.empty:
        return _nothing("real data: no overlay truth; inspect the galleries and QC flags instead")
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.scatter(t.psnr_before, t.psnr_after, s=8, alpha=0.6)
    lim = [0, max(t.psnr_after.max(), t.psnr_before.max()) + 2]
    ax.plot(lim, lim, "k--", lw=1)
    ax.set(xlabel="PSNR in overlays, export (dB)", ylabel="PSNR in overlays, cleaned (dB)")
    return fig


@_exported
def duplicate_pairs(res, n_groups: int = 2):
    """Cleaned images of duplicate groups (those that straddle the split first)."""
    from .data import read_image
    from .layout import RunLayout

    qc = res.qc
    groups = qc.dropna(subset=["dup_group"]).groupby("dup_group").image_id.apply(list)
    show = groups[groups.index.isin(res.leakage.dup_group)].head(n_groups).tolist() if len(res.leakage) else []
    show = show or groups.head(n_groups).tolist()
    if not show:
        return _nothing("no duplicate images found")
    images = RunLayout(res.settings.run_dir).clean.images
    ids = [i for g in show for i in g[:2]]
    return gallery([read_image(images / f"{i}.png") for i in ids], titles=[f"id {i}" for i in ids], ncols=4)


@_exported
def best_median_worst(res):
    """The ensemble's best, median and worst test cases (yellow: annotation, blue: prediction)."""
    from .segment import metrics

    a = res.test_arrays()
    ens = metrics.vote(a["probs"], res.vote)
    pe = res.ensemble_predictions()
    pick = res.best_median_worst()
    if not pick:
        return _nothing("no test image with plaque")
    return gallery(
        [a["images"][i] for i in pick],
        masks=[a["masks"][i] for i in pick],
        preds=[ens[i] for i in pick],
        titles=[
            f"{lab}: id {a['image_ids'][i]}, Dice {pe.dice[i]:.2f}" for lab, i in zip(["best", "median", "worst"], pick)
        ],
        ncols=3,
        size=3.2,
    )


@_exported
def false_alarms(res, n: int = 4):
    """Plaque-free test images on which the ensemble predicts some plaque (blue)."""
    from .segment import metrics

    a = res.test_arrays()
    ens = metrics.vote(a["probs"], res.vote)
    pe = res.ensemble_predictions()
    fa = pe[~pe.has_plaque & pe.any_predicted].index.tolist()[:n]
    if not fa:
        return _nothing("no false alarm on the plaque-free test images")
    return gallery(
        [a["images"][i] for i in fa],
        preds=[ens[i] for i in fa],
        titles=[f"id {a['image_ids'][i]}" for i in fa],
        ncols=4,
    )


@_exported
def ensemble_disagreement(res):
    """Where the U-Nets disagree with the vote (0 = unanimous, 1/3 = one dissenter)."""
    from .segment import metrics

    a = res.test_arrays()
    return disagreement_maps(a["images"], metrics.disagreement(a["probs"]), res.best_median_worst(), a["image_ids"])


@_exported
def area_agreement(res):
    """Bland-Altman of ensemble vs annotated plaque area (mm² when the pixel spacing is known);
    the bias and limits of agreement are in the title."""
    pe = res.ensemble_predictions()
    unit = "mm²" if pe.true_area_mm2.notna().any() else "px"
    col = "area_mm2" if unit == "mm²" else "area_px"
    p = pe[pe.has_plaque]
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.8))
    bias, lo, hi = bland_altman(p[f"true_{col}"], p[f"pred_{col}"], ax=ax, unit=unit)
    ax.set_title(f"bias {bias:+.1f} {unit}, limits of agreement {lo:+.1f} to {hi:+.1f} {unit}", fontsize=9)
    fig.tight_layout()
    return fig


@_exported
def reader_comparison(res, subset: str = "all test"):
    """Each model's Dice against annotator 1 (points, 95 % CIs) beside a second annotator's
    agreement with annotator 1 on the same images (grey band): the specialists' yardstick."""
    import matplotlib.pyplot as plt

    from .segment.stage import SECOND_READER

    t = res.metrics[(res.metrics.subset == subset) & (res.metrics.metric == "dice_mean")]
    if SECOND_READER not in set(t.model):
        return _nothing("no second reader's masks: nothing to compare the models with")
    reader = t[t.model == SECOND_READER].iloc[0]
    models = t[t.model != SECOND_READER]
    fig, ax = plt.subplots(figsize=(6.2, 0.45 * len(models) + 1.4))
    ax.axvspan(reader.ci_low, reader.ci_high, color="0.85", label=f"{SECOND_READER} vs annotator 1 (95 % CI)")
    ax.axvline(reader.estimate, color="0.4", lw=1)
    y = np.arange(len(models))[::-1]
    ax.errorbar(
        models.estimate,
        y,
        xerr=[models.estimate - models.ci_low, models.ci_high - models.estimate],
        fmt="o",
        color="C0",
        capsize=3,
    )
    ax.set_yticks(y, models.model)
    ax.set_xlabel("mean Dice against annotator 1 (test images with plaque)")
    ax.legend(loc="lower left", fontsize=8, frameon=False, bbox_to_anchor=(0, 1.0))
    ax.set_xlim(max(0.0, min(models.ci_low.min(), reader.ci_low) - 0.05), 1.0)
    fig.tight_layout()
    return fig


@_exported
def baseline_comparison(res):
    """Network vs the handcrafted baseline (same folds): both ROC curves, and on simulated data
    each score against the planted damage ``vd_true``."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    m = res.metrics.set_index("metric")
    d = res.vd.merge(res.baseline[["subject_id", "baseline_logit"]], on="subject_id")
    truth = "vd_true" in d
    fig, axes = plt.subplots(1, 3 if truth else 1, figsize=(12 if truth else 4.2, 4), squeeze=False)
    ax = axes[0, 0]
    for col, name, key, ls in (
        ("vd_logit", "network", "auc", "-"),
        ("baseline_logit", "baseline", "auc_baseline", "--"),
    ):
        fpr, tpr, _ = roc_curve(d.label, d[col])
        ax.plot(fpr, tpr, ls=ls, color="k" if ls == "-" else "#0072B2", label=f"{name}: {m.estimate[key]:.3f}")
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
    ax.set(
        xlabel="1 − specificity",
        ylabel="sensitivity",
        title=f"ΔAUROC {m.estimate['delta_auc']:+.3f} [{m.ci_low['delta_auc']:+.3f}, {m.ci_high['delta_auc']:+.3f}]",
    )
    ax.legend(title="AUROC", loc="lower right", fontsize=8)
    if truth:
        for ax, col, name, key in (
            (axes[0, 1], "vd_logit", "network VD (logit)", "spearman_vd_true"),
            (axes[0, 2], "baseline_logit", "baseline (logit)", "spearman_vd_true_baseline"),
        ):
            ax.scatter(d.vd_true, d[col], s=4, alpha=0.4, c=d.label, cmap="cividis")
            ax.set(xlabel="planted damage vd_true", ylabel=name, title=f"Spearman {m.estimate[key]:.2f}")
    fig.tight_layout()
    return fig


@_exported
def left_right(res):
    """Per-side VD (standardised within fold) for subjects filmed on both sides: left vs right,
    and the Bland-Altman plot of their difference against their mean with the 95 % limits."""
    import matplotlib.pyplot as plt

    p = res.left_right
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    if len(p) < 3:
        for ax in axes:
            ax.text(0.5, 0.5, "fewer than 3 subjects with both sides", ha="center", va="center")
            ax.set_axis_off()
        return fig
    a = res.agreement.set_index("metric").estimate
    axes[0].scatter(p.left, p.right, s=5, alpha=0.4, color="k")
    lim = [min(p.left.min(), p.right.min()), max(p.left.max(), p.right.max())]
    axes[0].plot(lim, lim, ls="--", color="grey", lw=1)
    axes[0].set(
        xlabel="left-side VD (z)",
        ylabel="right-side VD (z)",
        title=f"ICC(A,1) {a['icc_a1_left_right']:.2f}, Spearman {a['spearman_left_right']:.2f} (n = {len(p)})",
    )
    axes[1].scatter(p["mean"], p["diff"], s=5, alpha=0.4, color="k")
    for k, ls in (("bland_altman_bias", "-"), ("bland_altman_loa_low", "--"), ("bland_altman_loa_high", "--")):
        axes[1].axhline(a[k], ls=ls, color="#D55E00", lw=1)
    axes[1].set(
        xlabel="mean of the two sides (z)",
        ylabel="left − right (z)",
        title=f"bias {a['bland_altman_bias']:+.2f}, limits {a['bland_altman_loa_low']:+.2f} to {a['bland_altman_loa_high']:+.2f}",
    )
    fig.tight_layout()
    return fig


@_exported
def subject_agreement(res):
    """02's per-subject measurements against the simulator's planted truth: plaque area (mean
    per side) and far-wall IMT, measured vs true with the identity line, and each Bland-Altman
    plot (difference against mean, bias and 95 % limits)."""
    import matplotlib.pyplot as plt

    d = res.subject_truth
    if d is None or len(d) < 3:
        return _nothing("no planted truth to compare with (real data, or fewer than 3 subjects)")
    a = res.subject_agreement.set_index(["measure", "metric"]).estimate
    fig, axes = plt.subplots(2, 2, figsize=(9, 7.5))
    for row, (label, m, t, unit) in enumerate(
        (
            ("plaque area (mm², mean per side)", "plaque_area_mm2", "true_plaque_area_mm2", "mm²"),
            ("far-wall IMT (mm)", "imt_mm", "true_imt_mm", "mm"),
        )
    ):
        x = d[[m, t]].dropna()
        ax, bx = axes[row]
        ax.scatter(x[t], x[m], s=5, alpha=0.4, color="k")
        lim = [min(x[t].min(), x[m].min()), max(x[t].max(), x[m].max())]
        ax.plot(lim, lim, ls="--", color="grey", lw=1)
        icc = a.get((label, "icc_a1"), np.nan)
        ax.set(xlabel=f"planted {label}", ylabel=f"measured {label}", title=f"ICC(A,1) {icc:.2f} (n = {len(x)})")
        mean, diff = (x[m] + x[t]) / 2, x[m] - x[t]
        bx.scatter(mean, diff, s=5, alpha=0.4, color="k")
        for k, ls in (("bias", "-"), ("loa_low", "--"), ("loa_high", "--")):
            bx.axhline(a.get((label, k), np.nan), ls=ls, color="#D55E00", lw=1)
        bx.set(
            xlabel=f"mean of measured and planted ({unit})",
            ylabel=f"measured − planted ({unit})",
            title=f"bias {a.get((label, 'bias'), np.nan):+.3g}, limits "
            f"{a.get((label, 'loa_low'), np.nan):+.3g} to {a.get((label, 'loa_high'), np.nan):+.3g} {unit}",
        )
    fig.tight_layout()
    return fig
