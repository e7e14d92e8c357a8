"""Where does the video model look? captum attributions summarised by anatomical region, with
cascading-randomisation sanity checks and deletion curves.

Region enrichment = (share of attribution mass in a region) / (share of the region's area):
1 means no preference. Attribution mass is the absolute attribution summed over frames. Regions
come from the simulator's label maps (``anatomy.LABELS``) resized to the model's input.
"""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pandas as pd

REGIONS = {0: "background", 1: "lumen", 2: "near_wall", 3: "far_wall", 4: "plaque", 5: "perivascular"}


def attributions(
    model, x, method: str = "integrated_gradients", n_samples: int = 4, seed: int = 0, signed=False, baseline=0.0
):
    """Attribution maps ``[B, T, H, W]`` for clips ``x [B, C, T, H, W]``: absolute values summed over
    channels (non-negative, what enrichment uses), or with ``signed=True`` the signed sum.

    ``baseline``: the "no signal" input that Integrated Gradients integrates from and Occlusion
    pastes in, in the model's (normalised) units; see :func:`baseline_value`. Grad-CAM has none.
    """
    import torch
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, NoiseTunnel, Occlusion

    model.eval()
    x = torch.as_tensor(x).float()
    torch.manual_seed(seed)
    if method == "integrated_gradients":
        nt = NoiseTunnel(IntegratedGradients(model))
        a = nt.attribute(
            x,
            nt_type="smoothgrad",
            nt_samples=n_samples,
            stdevs=0.1,
            n_steps=16,
            baselines=float(baseline),
            internal_batch_size=max(4, x.shape[0]),
        )
    elif method == "occlusion":
        T, H = x.shape[2], x.shape[3]
        win = (1, max(1, T // 4), max(2, H // 8), max(2, H // 8))
        a = Occlusion(model).attribute(x, sliding_window_shapes=win, strides=win, baselines=float(baseline))
    elif method == "grad_cam":
        layer = model.layers[-1] if hasattr(model, "layers") else model.encoder
        g = LayerGradCam(model, layer).attribute(x, relu_attributions=True)
        a = LayerAttribution.interpolate(
            g.mean(2, keepdim=True).expand(-1, -1, 1, -1, -1).squeeze(2), x.shape[3:], interpolate_mode="bilinear"
        )
        a = a.unsqueeze(2).expand(-1, -1, x.shape[2], -1, -1)
    else:
        raise ValueError(f"method={method!r}")
    a = a.detach()
    return (a.sum(1) if signed else a.abs().sum(1)).numpy()


#: what "no signal" means for the attributions that need a reference input
BASELINES = ("anechoic", "mean")


def baseline_value(kind: str, mean: float, std: float) -> float:
    """The reference input in the model's normalised units (``(raw - mean) / std``).

    ``"anechoic"``: a black frame, raw intensity 0: no echo at all, the black image of
    Integrated Gradients' original paper (Sundararajan et al. 2017). Attribution then answers
    "which echoes drive the score"; anechoic pixels (blood in the lumen) get almost none by
    construction, because IG multiplies by (input - baseline) and Occlusion pastes black over black.
    ``"mean"``: the training clips' mean grey (normalised 0). Dark pixels then differ most from the
    reference, so a dark lumen collects attribution because it is dark, not because the model uses it.

    Example:
        >>> baseline_value("anechoic", mean=60.0, std=40.0)
        -1.5
    """
    if kind == "anechoic":
        return (0.0 - float(mean)) / float(std)
    if kind == "mean":
        return 0.0
    raise ValueError(f"baseline={kind!r}; choose one of {', '.join(BASELINES)}")


def resize_labels(labels: np.ndarray, frame_idx, size: int) -> np.ndarray:
    """Simulator label maps of the clip's frames resized (nearest) to the model input."""
    return np.stack([cv2.resize(labels[i], (size, size), interpolation=cv2.INTER_NEAREST) for i in frame_idx])


def cardiac_phases(lumen_area) -> dict[str, np.ndarray]:
    """Frame indices of a clip by cardiac phase, from its lumen area per frame.

    ``systole``: frames distended to at least halfway between the clip's smallest and largest
    lumen; ``diastole``: the rest. The artery spends most of each beat near its resting
    diameter, so a median split would put most frames on one side (ties at the minimum) and leave
    the other empty. A clip whose lumen never changes (no resolvable pulsation) gets only
    ``whole cycle``.

    Example:
        >>> {k: v.tolist() for k, v in cardiac_phases([10, 10, 14, 12, 10]).items()}
        {'whole cycle': [0, 1, 2, 3, 4], 'systole': [2, 3], 'diastole': [0, 1, 4]}
    """
    lumen = np.asarray(lumen_area, float)
    out = {"whole cycle": np.arange(len(lumen))}
    lo, hi = float(lumen.min()), float(lumen.max())
    if hi > lo:
        out["systole"] = np.where(lumen >= (lo + hi) / 2)[0]
        out["diastole"] = np.where(lumen < (lo + hi) / 2)[0]
    return out


def enrichment(att: np.ndarray, labels: np.ndarray) -> dict:
    """Per region: attribution-mass share / area share for one clip (``att``, ``labels`` [T, H, W])."""
    total, area = att.sum(), labels.size
    out = {}
    for k, name in REGIONS.items():
        m = labels == k
        if m.any() and total > 0:
            out[name] = float((att[m].sum() / total) / (m.sum() / area))
    return out


def bootstrap_enrichment(per_clip: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Mean enrichment per method/region/phase with subject-bootstrap 95 % CIs."""
    rng = np.random.default_rng(seed)
    rows = []
    for (method, phase), d in per_clip.groupby(["method", "phase"]):
        subj = d.subject_id.unique()
        piv = d.pivot_table(index="subject_id", columns="region", values="enrichment")
        boots = np.stack([piv.loc[rng.choice(subj, len(subj))].mean().to_numpy() for _ in range(n_boot)])
        for j, region in enumerate(piv.columns):
            rows.append(
                {
                    "method": method,
                    "phase": phase,
                    "region": region,
                    "enrichment": piv[region].mean(),
                    "ci_low": np.nanpercentile(boots[:, j], 2.5),
                    "ci_high": np.nanpercentile(boots[:, j], 97.5),
                    "n_subjects": len(subj),
                }
            )
    return pd.DataFrame(rows)


def cascading_randomisation(
    model, x, method: str = "integrated_gradients", seed: int = 0, baseline: float = 0.0
) -> pd.DataFrame:
    """Adebayo et al. (2018): re-initialise the model's parameterised blocks from the top down,
    one more at a time, and compare each step's maps with the trained model's.

    Two rank correlations, as in the paper: ``spearman`` on the signed maps and ``spearman_abs``
    on their absolute values, plus ``ssim`` of the frame-averaged absolute maps. Methods that
    multiply by the input (Integrated Gradients, gradient x input) keep the input's structure in
    absolute maps whatever the weights are, which is the weakness the paper reports for them; the
    signed maps show whether the attribution still depends on the model.
    """
    import torch
    from scipy import stats
    from skimage.metrics import structural_similarity

    base = attributions(model, x, method, seed=seed, signed=True, baseline=baseline)
    blocks = (
        [("head", model.head)]
        + [(f"block {i}", b) for i, b in reversed(list(enumerate(model.layers)))]
        + [("stem", model.stem)]
        if hasattr(model, "layers")
        else [("head", model.head)]
    )
    m = copy.deepcopy(model)
    named = dict(m.named_modules())
    name_of = {id(mod): n for n, mod in model.named_modules()}
    rows = []
    g = torch.Generator().manual_seed(seed)
    for label, block in blocks:
        target = named[name_of[id(block)]]
        for p in target.parameters():
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) * (p.std() if p.numel() > 1 and p.std() > 0 else 0.1))
        a = attributions(m, x, method, seed=seed, signed=True, baseline=baseline)
        sp = [stats.spearmanr(a[i].ravel(), base[i].ravel())[0] for i in range(len(a))]
        sp_abs = [stats.spearmanr(np.abs(a[i]).ravel(), np.abs(base[i]).ravel())[0] for i in range(len(a))]
        ss = [
            structural_similarity(_n(np.abs(a[i]).mean(0)), _n(np.abs(base[i]).mean(0)), data_range=1.0)
            for i in range(len(a))
        ]
        rows.append(
            {
                "method": method,
                "randomised_through": label,
                "spearman": float(np.nanmean(sp)),
                "spearman_abs": float(np.nanmean(sp_abs)),
                "ssim": float(np.mean(ss)),
            }
        )
    return pd.DataFrame(rows)


def _n(a):
    return (a - a.min()) / (a.max() - a.min() + 1e-12)


def deletion_curve(model, x, att, steps: int = 10, seed: int = 0, baseline: float = 0.0) -> pd.DataFrame:
    """Delete (set to ``baseline``, the attributions' reference input) the most-attributed pixels
    first, in ``steps`` equal fractions, and track the predicted probability, against a random order.
    Returns per clip the area under each curve (lower = attributions more faithful)."""
    import torch

    rng = np.random.default_rng(seed)
    model.eval()
    rows = []
    with torch.no_grad():
        for i in range(len(x)):
            xi = np.asarray(x[i : i + 1], np.float32)
            p0 = torch.sigmoid(model(torch.from_numpy(xi))).item()
            sign = 1.0 if p0 >= 0.5 else -1.0  # follow the predicted class's probability
            p0 = p0 if sign > 0 else 1 - p0
            for order_name, order in (
                ("attribution", np.argsort(-att[i].ravel())),
                ("random", rng.permutation(att[i].size)),
            ):
                probs = [p0]
                flat = xi.reshape(-1).copy()
                n = len(order)
                for s in range(1, steps + 1):
                    flat[order[: int(n * s / steps)]] = baseline
                    q = torch.sigmoid(model(torch.from_numpy(flat.reshape(xi.shape)))).item()
                    probs.append(q if sign > 0 else 1 - q)
                probs = np.asarray(probs) / max(p0, 1e-6)
                rows.append({"clip": i, "order": order_name, "auc": float(np.trapezoid(probs, dx=1.0 / steps))})
    return pd.DataFrame(rows)
