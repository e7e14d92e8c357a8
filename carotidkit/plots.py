"""One figure style for every notebook: galleries, animations, survival curves.

Matplotlib is imported lazily; every axis that carries a quantity says its unit.
"""
from __future__ import annotations

import numpy as np

PALETTE = {"plaque": "#f2c94c", "overlay": "#eb5757", "pred": "#2d9cdb", "ok": "#27ae60",
           "male": "#2f80ed", "female": "#bb6bd9"}


def style():
    """Apply carotidkit's matplotlib style (call once at the top of a notebook)."""
    import matplotlib as mpl

    mpl.rcParams.update({"figure.dpi": 90, "savefig.dpi": 110, "axes.spines.top": False,
                         "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.25,
                         "font.size": 10, "axes.titlesize": 10, "image.cmap": "gray",
                         "animation.embed_limit": 20})


def _contour(ax, mask, color, lw=1.0):
    if mask is not None and np.asarray(mask).any():
        ax.contour(np.asarray(mask, float), levels=[0.5], colors=[color], linewidths=lw)


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


def animate_clips(clips, titles=None, fps: float = 25.0, size: float = 2.4):
    """Side-by-side animation of cine loops (``[T, H, W]`` uint8 each) as embeddable HTML."""
    import matplotlib.pyplot as plt
    from matplotlib import animation
    from IPython.display import HTML

    n = len(clips)
    fig, axes = plt.subplots(1, n, figsize=(size * n, size), squeeze=False)
    ims = []
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        ims.append(ax.imshow(clips[k][0], cmap="gray", vmin=0, vmax=255))
        if titles is not None:
            ax.set_title(titles[k], fontsize=8)
    T = min(len(c) for c in clips)

    def step(t):
        for im, c in zip(ims, clips):
            im.set_data(c[t])
        return ims

    anim = animation.FuncAnimation(fig, step, frames=T, interval=1000 / fps, blit=True)
    html = HTML(anim.to_jshtml(default_mode="loop"))
    plt.close(fig)
    return html


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
            km = KaplanMeierFitter().fit(sub[f"{ep}_years"], sub[f"{ep}_event"],
                                         label=str(level) if level is not None else "all")
            km.plot_cumulative_density(ax=ax, ci_show=True, color=PALETTE.get(str(level)))
        ax.set_title(ep.replace("_", " "))
        ax.set_xlabel("years since baseline")
        ax.set_ylabel("cumulative incidence (fraction)")
    fig.tight_layout()
    return fig


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
