""" "What we found", written from the result tables, so the words cannot disagree with them.

A stage result's ``findings()`` builds a :class:`Findings`: sentences whose every number is looked
up in one of the result's tables (:meth:`Findings.num`, :meth:`Findings.ci`) and recorded as a
*claim* (table, row, column, format, text). The notebook displays it as its closing paragraph; the
stage saves the claims beside the tables (``findings_claims.csv``) and the text (``findings.md``),
and the test suite re-reads each claimed cell from the saved CSV and checks that the page shows
exactly that number.

Example:
    >>> import pandas as pd
    >>> t = {"metrics": pd.DataFrame({"metric": ["dice"], "estimate": [0.7444], "ci_low": [0.69], "ci_high": [0.79]})}
    >>> f = Findings(t)
    >>> f.say(f"Dice {f.ci('metrics', metric='dice')}.")
    >>> f.markdown()
    'Dice 0.744 [0.690, 0.790].'
"""

from __future__ import annotations

import json
import math

import pandas as pd

DASH = "−"  # minus sign for negative numbers in prose


def fmt_number(value, fmt: str) -> str:
    """``value`` formatted for prose: ``fmt`` as in ``format`` (``.3f``, ``.0f``, ``d``, ``.1%``),
    ``p`` for a p-value (``<0.001``, else 3 decimals), negative numbers with a true minus sign."""
    v = float(value)
    if not math.isfinite(v):
        return "n/a"
    if fmt == "p":
        return "<0.001" if v < 0.001 else f"{v:.3f}"
    if fmt == "d":
        text = f"{int(round(v)):,}"
    else:
        text = format(v, fmt)
    return text.replace("-", DASH)


def fmt_p(p) -> str:
    """A p-value as journals print it: ``<0.001``, else three decimals (``n/a`` when missing)."""
    try:
        return fmt_number(p, "p")
    except (TypeError, ValueError):
        return "n/a"


class Findings:
    """Sentences with looked-up numbers; renders as Markdown in a notebook."""

    def __init__(self, tables: dict[str, pd.DataFrame], title: str | None = None):
        self.tables = tables
        self.title = title
        self.sentences: list[str] = []
        self.claims: list[dict] = []

    def lookup(self, table: str, column: str, **where):
        """The one cell of ``table`` in ``column`` on the row matching ``where`` (``None`` when
        the table, column or row is missing)."""
        df = self.tables.get(table)
        if df is None or column not in df.columns:
            return None
        sel = pd.Series(True, index=df.index)
        for k, v in where.items():
            if k not in df.columns:
                return None
            sel &= df[k].astype(str) == str(v)
        rows = df[sel]
        if len(rows) != 1:
            return None
        value = rows[column].iloc[0]
        try:
            return float(value)
        except (TypeError, ValueError):
            return None

    def num(self, table: str, column: str = "estimate", fmt: str = ".3f", **where) -> str | None:
        """The formatted number, recorded as a claim (``None`` if it cannot be found)."""
        v = self.lookup(table, column, **where)
        if v is None or not math.isfinite(v):
            return None
        text = fmt_number(v, fmt)
        self.claims.append(
            {"table": table, "column": column, "where": json.dumps(where, default=str), "fmt": fmt, "text": text}
        )
        return text

    def ci(
        self,
        table: str,
        est: str = "estimate",
        lo: str = "ci_low",
        hi: str = "ci_high",
        fmt: str = ".3f",
        style: str = "[]",
        **where,
    ) -> str | None:
        """``estimate [low, high]`` (``style="()"``: ``estimate (low–high)``, as for hazard ratios,
        which are never negative)."""
        e, a, b = (self.lookup(table, c, **where) for c in (est, lo, hi))
        if e is None or not math.isfinite(e):
            return None
        e = self.num(table, est, fmt, **where)
        if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
            return e
        a, b = self.num(table, lo, fmt, **where), self.num(table, hi, fmt, **where)
        return f"{e} ({a}–{b})" if style == "()" else f"{e} [{a}, {b}]"

    def say(self, sentence: str | None) -> None:
        """Add a sentence (``None`` or one holding a missing number is left out)."""
        if sentence and "None" not in sentence:
            self.sentences.append(sentence.strip())

    def markdown(self) -> str:
        return " ".join(self.sentences) if self.sentences else "No result to report from this run."

    def _repr_markdown_(self) -> str:
        head = f"**{self.title}** " if self.title else ""
        return head + self.markdown()

    def claims_table(self) -> pd.DataFrame:
        return pd.DataFrame(self.claims, columns=["table", "column", "where", "fmt", "text"])


def facts(**values) -> pd.DataFrame:
    """A ``key, value`` table of single numbers a finding cites (settings, counts, planted truth)."""
    rows = [{"key": k, "value": float(v)} for k, v in values.items() if v is not None and _finite(v)]
    return pd.DataFrame(rows, columns=["key", "value"])


def _finite(v) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


__all__ = ["Findings", "facts", "flat_facts", "fmt_number", "fmt_p", "verdict"]


def verdict(lo, hi, above: str, below: str, neither: str, null: float = 0.0) -> str:
    """Words for a confidence interval against its null value: ``above`` when it lies wholly
    above, ``below`` when wholly below, else ``neither`` (missing bounds count as neither)."""
    if lo is not None and math.isfinite(lo) and lo > null:
        return above
    if hi is not None and math.isfinite(hi) and hi < null:
        return below
    return neither


def flat_facts(summary: dict, prefix: str = "") -> pd.DataFrame:
    """A stage summary's numbers (nested dicts flattened with ``.``) as a ``facts`` table."""
    vals: dict = {}

    def walk(d, pre):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{pre}{k}.")
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                vals[f"{pre}{k}"] = v

    walk(summary or {}, prefix)
    return facts(**vals)


# ----------------------------------------------------------------------------- stage findings


def data_findings(res) -> Findings:
    """00: what data the run holds."""
    f = Findings(res.tables())
    c = "counts."
    f.say(
        f"The run holds {f.num('facts', 'value', 'd', key=c + 'subjects')} subjects with "
        f"{f.num('facts', 'value', 'd', key=c + 'clips')} cine loops and "
        f"{f.num('facts', 'value', 'd', key=c + 'plaque_images')} plaque-database images "
        f"({f.num('facts', 'value', 'd', key=c + 'plaque_images_with_plaque')} with a plaque)."
    )
    ev = [
        f"{f.num('facts', 'value', 'd', key=f'events.{ep}')} {label}"
        for ep, label in (("mi", "myocardial infarctions"), ("cardiac_death", "cardiac deaths"), ("death", "deaths"))
    ]
    ev = [e for e in ev if "None" not in e]
    if ev:
        f.say("Over follow-up there were " + ", ".join(ev) + ".")
    hyp = f.num("facts", "value", ".1%", key="hypertension_share")
    if hyp:
        f.say(f"Hypertension, 03's training label, is present in {hyp} of the cohort.")
    if res.synthetic:
        f.say(
            "All of it is simulated: the latent vascular damage (vd_true) drives wall thickness, distension, "
            f"plaque and hypertension, with a planted hazard ratio of {f.num('facts', 'value', '.1f', key='vd_hr_per_sd')} "
            "per SD for MI and cardiac death: what notebooks 03–05 try to recover."
        )
    return f


def clean_findings(res) -> Findings:
    """01: cleaning, QC and duplicates."""
    f = Findings(res.tables())
    f.say(
        f"{f.num('facts', 'value', 'd', key='images')} images were cleaned and squared; "
        f"{f.num('facts', 'value', 'd', key='errors')} could not be used."
    )
    before, after = (f.num("facts", "value", ".1f", key=f"score.psnr_{w}_db") for w in ("before", "after"))
    if before and after:
        f.say(
            f"Inside the burned-in overlays the PSNR against the clean image rose from {before} to {after} dB, and "
            f"{f.num('facts', 'value', '.1%', key='score.overlay_recall')} of the overlay pixels were found."
        )
    g, leak = f.num("facts", "value", "d", key="duplicate_groups"), f.num("facts", "value", "d", key="leaking_groups")
    f.say(
        f"{g} groups of duplicate images were found and {leak} of them straddle the database's shipped train/test "
        "split. The shipped test set is kept as it is (to compare with the paper), so 02 reports its test results "
        "with and without those images; validation is drawn from the training side whole groups at a time, so no "
        "group is split between training and validation."
    )
    return f


def unet_findings(res) -> Findings:
    """02: the ensemble against its members and the second reader; on simulated data, the
    subjects' plaque area and IMT against the planted truth."""
    t = res.tables()
    f = Findings(t)
    ens = f"ensemble ({res.vote})"
    at = {"subset": "all test", "metric": "dice_mean"}
    n = f.num("metrics", "n_images", "d", model=ens, **at)
    f.say(f"On {n} test images with plaque the {ens} reached Dice {f.ci('metrics', model=ens, **at)}.")
    mem = t.get("members_vs_ensemble", pd.DataFrame())
    best = None
    if len(mem):
        mem = mem[~mem.model.str.startswith("ensemble")]
        best = mem.sort_values("dice_model", ascending=False).model.iloc[0] if len(mem) else None
    if best is not None:
        diff = f.ci("members_vs_ensemble", "difference", fmt="+.3f", model=best)
        lo, hi = (f.lookup("members_vs_ensemble", c, model=best) for c in ("ci_low", "ci_high"))
        word = verdict(
            lo,
            hi,
            "ahead of the ensemble beyond noise",
            "behind the ensemble beyond noise",
            "not distinguishable from the ensemble on this test set",
        )
        f.say(
            f"The best single model, {best}, had Dice {f.num('members_vs_ensemble', 'dice_model', model=best)}"
            f" (paired difference member − ensemble {diff}): {word}."
        )
        fa = {"subset": "all test", "metric": "false_alarm_rate"}
        f.say(
            f"False alarms on plaque-free test images: {f.num('metrics', fmt='.0%', model=ens, **fa)} for the "
            f"ensemble and {f.num('metrics', fmt='.0%', model=best, **fa)} for {best}."
        )
    vr = t.get("versus_reader", pd.DataFrame())
    if len(vr):
        m0 = vr.model.iloc[0]
        f.say(
            f"The second reader reached Dice {f.num('versus_reader', 'dice_reference', model=m0)} against "
            "annotator 1 on the same images: that is the bar for 'comparable to inter-observer agreement'."
        )
    if res.synthetic and len(res.subject_agreement):
        sa = "subject_agreement"
        area = "plaque area (mm², mean per side)"
        imt = "far-wall IMT (mm)"
        f.say(
            f"Measured on every subject's images against the simulator's planted truth: plaque area ICC "
            f"{f.num(sa, measure=area, metric='icc_a1', fmt='.2f')} (bias {f.num(sa, measure=area, metric='bias', fmt='+.1f')} mm²), "
            f"far-wall IMT ICC {f.num(sa, measure=imt, metric='icc_a1', fmt='.2f')} (bias "
            f"{f.num(sa, measure=imt, metric='bias', fmt='+.3f')} mm)."
        )
    return f


def vd_findings(res) -> Findings:
    """03: how well the video network learned its proxy label."""
    f = Findings(res.tables())
    auc = f.ci("metrics", metric="auc")
    base = f.ci("metrics", metric="auc_baseline")
    delta = f.ci("metrics", metric="delta_auc", fmt="+.3f")
    f.say(
        f"Cross-fitted over {f.num('facts', 'value', 'd', key='n_subjects')} subjects, the video network predicted "
        f"hypertension with AUROC {auc}."
    )
    if base:
        lo, hi = f.lookup("metrics", "ci_low", metric="delta_auc"), f.lookup("metrics", "ci_high", metric="delta_auc")
        word = verdict(lo, hi, "better than", "worse than", "not distinguishable from")
        f.say(
            f"The handcrafted image-statistics baseline on the same folds reached {base}: the network is {word} "
            f"it (difference {delta})."
        )
    acc, paper = f.num("metrics", metric="accuracy"), f.num("facts", "value", key="paper_accuracy")
    if acc and paper:
        f.say(f"Accuracy at p > 0.5 was {acc}; the paper reports {paper} on its own cohort.")
    if res.synthetic:
        rho = f.ci("metrics", metric="spearman_vd_true", fmt=".2f")
        prt = f.num("metrics", metric="partial_spearman_vd_true", fmt=".2f")
        if rho:
            f.say(
                f"Against the simulator's latent damage VD has Spearman ρ {rho}"
                + (f" ({prt} given age, sex and systolic pressure)" if prt else "")
                + ": the share of the damage the proxy label let the network learn."
            )
    return f


def xai_findings(res) -> Findings:
    """04: where the models look, whether that is faithful, and what VD goes with."""
    t = res.tables()
    f = Findings(t)
    e = t.get("enrichment", pd.DataFrame())
    ig = e[(e.method == "integrated_gradients") & (e.phase == "whole cycle")] if len(e) else e
    if len(ig):
        top = ig.sort_values("enrichment", ascending=False).region.iloc[0]
        parts = [
            f"{r.replace('_', ' ')} {f.ci('enrichment', 'enrichment', fmt='.2f', method='integrated_gradients', phase='whole cycle', region=r)}"
            for r in ig.region
            if r != "background"
        ]
        f.say(
            "Integrated Gradients' attribution per unit area relative to the whole frame (1 = no preference): "
            + "; ".join(parts)
            + f". The most attributed region is the {top.replace('_', ' ')}."
        )
    d = t.get("deletion_summary", pd.DataFrame())
    key = "attribution - random (paired)"
    if len(d) and key in set(d.order):
        diff = f.ci("deletion_summary", "deletion_auc", fmt="+.3f", order=key)
        lo, hi = f.lookup("deletion_summary", "ci_low", order=key), f.lookup("deletion_summary", "ci_high", order=key)
        word = verdict(
            lo,
            hi,
            "the attribution is worse than random here",
            "the attributed pixels matter more to the model than random ones",
            "inconclusive: the CI includes 0, so these attributions are not shown to be faithful",
        )
        f.say(f"Deletion test (attribution order minus random order, lower is better): {diff}, {word}.")
    cam = t.get("unet_cam_summary", pd.DataFrame())
    if len(cam):
        m = cam.model.iloc[-1]
        share = f.num("unet_cam_summary", "share_of_cam_in_plaque", fmt=".3f", model=m)
        area = f.num("unet_cam_summary", "plaque_area_share", fmt=".3f", model=m)
        inside = f.lookup("unet_cam_summary", "share_of_cam_in_plaque", model=m)
        frac = f.lookup("unet_cam_summary", "plaque_area_share", model=m)
        more = inside is not None and frac is not None and inside > frac
        f.say(
            f"U-Net Grad-CAM ({m}): {share} of the heat lies inside the annotated plaque, which covers {area} of the "
            "image, so the heat is "
            + ("concentrated on the plaque." if more else "not concentrated on the plaque (less than its area share).")
        )
    a = t.get("associations", pd.DataFrame())
    if len(a):
        from .tables import VALUE_LABELS

        top = a.sort_values("rank_shap").term.iloc[0]
        f.say(f"SHAP's top driver of VD among the risk factors is {VALUE_LABELS.get(top, top).split(', ')[0]}.")
        for term, label in (("imt_mm", "far-wall IMT"), ("plaque_area_mm2", "plaque area")):
            if term in set(a.term):
                f.say(
                    f"Adjusted for the risk factors, {label} goes with "
                    f"{f.ci('associations', 'beta_per_sd', fmt='+.2f', term=term)} SD of VD per SD."
                )
    return f
