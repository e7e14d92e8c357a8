"""SCORE2, SCORE2-OP and SCORE2-Diabetes: 10-year risk of fatal + non-fatal CVD, vectorised.

Coefficients, baseline survivals and region recalibration scales are the published ones:

* SCORE2 (age 40-69): SCORE2 working group and ESC Cardiovascular risk collaboration,
  Eur Heart J 2021;42:2439-2454, doi:10.1093/eurheartj/ehab309, Supplementary Methods.
* SCORE2-OP (age >= 70): SCORE2-OP working group, Eur Heart J 2021;42:2455-2467,
  doi:10.1093/eurheartj/ehab312, Supplementary Table 3.
* SCORE2-Diabetes (type 2 diabetes, age 40-69): SCORE2-Diabetes Working Group,
  Eur Heart J 2023;44:2544-2556, doi:10.1093/eurheartj/ehad260, Supplementary Table 4
  (same baseline survival and region scales as SCORE2).

Rules that are visible in the output (the ``*_flag`` column of :func:`score2_table`):

* ages below a model's range (GHS starts at 35) are *extrapolated* by default with the flag
  ``"age<40 extrapolated"``; ``below_range="clamp"`` computes them at 40 instead and
  ``below_range="nan"`` leaves them missing;
* a missing input gives a missing risk and the flag ``"missing: <columns>"``, never a guess;
* ESC guidance uses SCORE2 for people *without* diabetes; :func:`score2` still applies the
  published diabetes terms, and :func:`esc_risk` picks SCORE2-Diabetes for people with diabetes
  aged 40-69 when its extra inputs are present (``model`` column says which was used).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..io import CarotidkitError

REGIONS = ("low", "moderate", "high", "very high")

# Every table: term -> (men, women), as printed in the papers.
#: SCORE2 (40-69): cage=(age-60)/5, csbp=(sbp-120)/20, ctc=tc-6, chdl=(hdl-1.3)/0.5.
SCORE2_COEF = {
    "cage": (0.3742, 0.4648),
    "smoking": (0.6012, 0.7744),
    "csbp": (0.2777, 0.3131),
    "diabetes": (0.6457, 0.8096),
    "ctc": (0.1458, 0.1002),
    "chdl": (-0.2698, -0.2606),
    "cage_smoking": (-0.0755, -0.1088),
    "cage_csbp": (-0.0255, -0.0277),
    "cage_ctc": (-0.0281, -0.0226),
    "cage_chdl": (0.0426, 0.0613),
    "cage_diabetes": (-0.0983, -0.1272),
}
SCORE2_S0 = (0.9605, 0.9776)
#: region recalibration (a, b) for (men, women): risk = 1 - exp(-exp(a + b * ln(-ln(1 - p))))
SCORE2_SCALES = {
    "low": ((-0.5699, 0.7476), (-0.7380, 0.7019)),
    "moderate": ((-0.1565, 0.8009), (-0.3143, 0.7701)),
    "high": ((0.3207, 0.9360), (0.5710, 0.9369)),
    "very high": ((0.5836, 0.8294), (0.9412, 0.8329)),
}
#: SCORE2-OP (>= 70): age-73, sbp-150, tc-6, hdl-1.4 (no division); interactions with (age-73).
OP_COEF = {
    "age": (0.0634, 0.0789),
    "diabetes": (0.4245, 0.6010),
    "smoking": (0.3524, 0.4921),
    "sbp": (0.0094, 0.0102),
    "tc": (0.0850, 0.0605),
    "hdl": (-0.3564, -0.3040),
    "age_diabetes": (-0.0174, -0.0107),
    "age_smoking": (-0.0247, -0.0255),
    "age_sbp": (-0.0005, -0.0004),
    "age_tc": (0.0073, -0.0009),
    "age_hdl": (0.0091, 0.0154),
}
OP_S0, OP_MEAN_LP = (0.7576, 0.8082), (0.0929, 0.229)
OP_SCALES = {
    "low": ((-0.34, 1.19), (-0.52, 1.01)),
    "moderate": ((0.01, 1.25), (-0.10, 1.10)),
    "high": ((0.08, 1.15), (0.38, 1.09)),
    "very high": ((0.05, 0.70), (0.38, 0.69)),
}
#: SCORE2-Diabetes (40-69): SCORE2 centring plus cdm_age=(age at diagnosis-50)/5,
#: chba1c=(HbA1c mmol/mol-31)/9.34, cegfr=(ln eGFR-4.5)/0.15; SCORE2's baseline survival and scales.
DIABETES_COEF = {
    "cage": (0.5368, 0.6624),
    "smoking": (0.4774, 0.6139),
    "csbp": (0.1322, 0.1421),
    "diabetes": (0.6457, 0.8096),
    "ctc": (0.1102, 0.1127),
    "chdl": (-0.1087, -0.1568),
    "cage_smoking": (-0.0672, -0.1122),
    "cage_csbp": (-0.0268, -0.0167),
    "cage_diabetes": (-0.0983, -0.1272),
    "cage_ctc": (-0.0181, -0.0200),
    "cage_chdl": (0.0095, 0.0186),
    "diabetes_cdm_age": (-0.0998, -0.1180),
    "chba1c": (0.0955, 0.1173),
    "cegfr": (-0.0591, -0.0640),
    "cegfr2": (0.0058, 0.0062),
    "chba1c_cage": (-0.0134, -0.0196),
    "cegfr_cage": (0.0115, 0.0169),
}

INPUTS = ("age_years", "sex", "smoking", "sbp_mmhg", "tc_mmol_l", "hdl_mmol_l", "diabetes")


def hba1c_pct_to_mmol_mol(pct):
    """NGSP/DCCT % to IFCC mmol/mol by the IFCC-NGSP master equation (NGSP = 0.09148*IFCC + 2.152).

    Example:
        >>> round(float(hba1c_pct_to_mmol_mol(6.5)), 1)
        47.5
    """
    return (np.asarray(pct, float) - 2.152) / 0.09148


def _check(df: pd.DataFrame, cols, region: str) -> None:
    if region not in REGIONS:
        raise CarotidkitError(f"region={region!r}: choose one of {', '.join(REGIONS)}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise CarotidkitError(
            f"SCORE2 needs column(s) {', '.join(missing)}; map them with the cohort loader's column_map"
        )
    bad = set(df["sex"].dropna().unique()) - {"female", "male"}
    if bad:
        raise CarotidkitError(f"column sex: values {sorted(map(str, bad))} are not 'female'/'male'")


def _by_sex(df, pair):
    """``pair = (men, women)`` as one value per row."""
    return np.where((df["sex"] == "male").to_numpy(), pair[0], pair[1])


def _risk(df, coef, terms, s0, region_scales, mean_lp=(0.0, 0.0)):
    """Uncalibrated risk ``1 - S0^exp(LP - mean LP)``, then the region recalibration."""
    lp = sum(_by_sex(df, coef[name]) * value for name, value in terms.items())
    p = 1 - _by_sex(df, s0) ** np.exp(lp - _by_sex(df, mean_lp))
    (am, bm), (af, bf) = region_scales
    a, b = _by_sex(df, (am, af)), _by_sex(df, (bm, bf))
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 - np.exp(-np.exp(a + b * np.log(-np.log(1 - p))))


def _score2_terms(df) -> dict:
    """SCORE2's centred terms and their age interactions (shared by SCORE2-Diabetes)."""
    cage = (df.age_years.to_numpy(float) - 60) / 5
    base = {
        "smoking": df.smoking.to_numpy(float),
        "csbp": (df.sbp_mmhg.to_numpy(float) - 120) / 20,
        "diabetes": df.diabetes.to_numpy(float),
        "ctc": df.tc_mmol_l.to_numpy(float) - 6,
        "chdl": (df.hdl_mmol_l.to_numpy(float) - 1.3) / 0.5,
    }
    return {"cage": cage, **base, **{f"cage_{k}": cage * v for k, v in base.items()}}


def _score2_core(df, region):
    return _risk(df, SCORE2_COEF, _score2_terms(df), SCORE2_S0, SCORE2_SCALES[region])


def _op_core(df, region):
    age = df.age_years.to_numpy(float) - 73
    base = {
        "diabetes": df.diabetes.to_numpy(float),
        "smoking": df.smoking.to_numpy(float),
        "sbp": df.sbp_mmhg.to_numpy(float) - 150,
        "tc": df.tc_mmol_l.to_numpy(float) - 6,
        "hdl": df.hdl_mmol_l.to_numpy(float) - 1.4,
    }
    terms = {"age": age, **base, **{f"age_{k}": age * v for k, v in base.items()}}
    return _risk(df, OP_COEF, terms, OP_S0, OP_SCALES[region], OP_MEAN_LP)


def _missing_flags(df, cols) -> pd.Series:
    miss = df[list(cols)].isna()
    return (
        miss.apply(lambda r: "missing: " + ", ".join(r.index[r]) if r.any() else "", axis=1)
        if miss.to_numpy().any()
        else pd.Series("", index=df.index)
    )


def score2_table(df: pd.DataFrame, region: str = "moderate", below_range: str = "extrapolate") -> pd.DataFrame:
    """SCORE2 (40-69) / SCORE2-OP (>= 70) per row: ``score2_risk``, ``score2_model``,
    ``score2_category`` (ESC 2021) and ``score2_flag`` (why a value is missing or extrapolated).

    Example:
        >>> d = pd.DataFrame(dict(age_years=[50], sex=["male"], smoking=[1], sbp_mmhg=[140],
        ...                       tc_mmol_l=[6.3], hdl_mmol_l=[1.4], diabetes=[0]))
        >>> round(float(score2_table(d).score2_risk.iloc[0]), 3)
        0.081
    """
    _check(df, INPUTS, region)
    if below_range not in ("extrapolate", "clamp", "nan"):
        raise CarotidkitError(f"below_range={below_range!r}: choose extrapolate, clamp or nan")
    d = df[list(INPUTS)].copy()
    age = d.age_years.to_numpy(float)
    young = age < 40
    if below_range == "clamp":
        d.loc[young, "age_years"] = 40.0
    risk = np.where(age >= 70, _op_core(d, region), _score2_core(d, region))
    flag = _missing_flags(df, INPUTS).to_numpy(object)
    note = {
        "extrapolate": "age<40 extrapolated",
        "clamp": "age<40 computed at 40",
        "nan": "age<40 outside model range",
    }[below_range]
    flag = np.where(young & (flag == ""), note, flag)
    if below_range == "nan":
        risk = np.where(young, np.nan, risk)
    risk = np.where(d.isna().any(axis=1).to_numpy(), np.nan, risk)
    out = pd.DataFrame(
        {"score2_risk": risk, "score2_model": np.where(age >= 70, "SCORE2-OP", "SCORE2"), "score2_flag": flag},
        index=df.index,
    )
    out["score2_category"] = esc_category(out.score2_risk, df.age_years)
    return out


def score2(df: pd.DataFrame, region: str = "moderate", below_range: str = "extrapolate") -> pd.Series:
    """10-year CVD risk (fraction): SCORE2 for ages 40-69 and SCORE2-OP from 70.

    Example:
        >>> d = pd.DataFrame(dict(age_years=[75, 75], sex=["male", "female"], smoking=[1, 1],
        ...                       sbp_mmhg=[140, 140], tc_mmol_l=[5.5, 5.5], hdl_mmol_l=[1.3, 1.3],
        ...                       diabetes=[0, 0]))
        >>> score2(d, region="low").round(2).tolist()
        [0.19, 0.15]
    """
    return score2_table(df, region, below_range).score2_risk.rename("score2_risk")


def score2_diabetes(df: pd.DataFrame, region: str = "moderate") -> pd.Series:
    """SCORE2-Diabetes 10-year CVD risk (fraction) for type 2 diabetes, ages 40-69.

    Needs the SCORE2 columns plus ``hba1c_mmol_mol`` (or ``hba1c_pct``, converted by the
    IFCC-NGSP master equation), ``egfr_ml_min`` and ``age_at_diabetes_years``. Rows without
    diabetes get the same model with ``diabetes=0`` (the diagnosis-age term drops out).

    Example:
        >>> d = pd.DataFrame(dict(age_years=[60], sex=["male"], smoking=[0], sbp_mmhg=[140],
        ...     tc_mmol_l=[5.5], hdl_mmol_l=[1.3], diabetes=[1], hba1c_mmol_mol=[50],
        ...     egfr_ml_min=[90], age_at_diabetes_years=[60]))
        >>> round(float(score2_diabetes(d, "moderate").iloc[0]), 3)
        0.11
    """
    d = df.copy()
    if "hba1c_mmol_mol" not in d and "hba1c_pct" in d:
        d["hba1c_mmol_mol"] = hba1c_pct_to_mmol_mol(d.hba1c_pct)
    _check(d, (*INPUTS, "hba1c_mmol_mol", "egfr_ml_min", "age_at_diabetes_years"), region)
    terms = _score2_terms(d)
    dm, cage = terms["diabetes"], terms["cage"]
    chba1c = (d.hba1c_mmol_mol.to_numpy(float) - 31) / 9.34
    with np.errstate(divide="ignore", invalid="ignore"):
        cegfr = (np.log(d.egfr_ml_min.to_numpy(float)) - 4.5) / 0.15
    terms.update(
        diabetes_cdm_age=dm * np.where(dm > 0, (d.age_at_diabetes_years.to_numpy(float) - 50) / 5, 0.0),
        chba1c=chba1c,
        cegfr=cegfr,
        cegfr2=cegfr**2,
        chba1c_cage=chba1c * cage,
        cegfr_cage=cegfr * cage,
    )
    risk = _risk(d, DIABETES_COEF, terms, SCORE2_S0, SCORE2_SCALES[region])
    return pd.Series(risk, index=df.index, name="score2_diabetes_risk")


def esc_category(risk, age) -> pd.Series:
    """ESC 2021 categories from 10-year risk and age: ``low-to-moderate``, ``high``, ``very high``.

    Age < 50: < 2.5 %, 2.5 to < 7.5 %, >= 7.5 %; 50-69: < 5 %, 5 to < 10 %, >= 10 %;
    >= 70: < 7.5 %, 7.5 to < 15 %, >= 15 %.
    """
    risk, age = np.asarray(risk, float), np.asarray(age, float)
    lo = np.where(age < 50, 0.025, np.where(age < 70, 0.05, 0.075))
    hi = np.where(age < 50, 0.075, np.where(age < 70, 0.10, 0.15))
    cat = np.where(risk < lo, "low-to-moderate", np.where(risk < hi, "high", "very high"))
    cat = np.where(np.isnan(risk), None, cat)
    return pd.Series(
        pd.Categorical(cat, categories=["low-to-moderate", "high", "very high"], ordered=True),
        index=getattr(risk, "index", None),
    )


def esc_risk(df: pd.DataFrame, region: str = "moderate", below_range: str = "extrapolate") -> pd.DataFrame:
    """The ESC-recommended score per person: SCORE2-Diabetes for type 2 diabetes aged 40-69 when
    HbA1c, eGFR and age at diagnosis are present, SCORE2/SCORE2-OP otherwise (``score2_model``)."""
    out = score2_table(df, region, below_range)
    extra = {"egfr_ml_min", "age_at_diabetes_years"} <= set(df.columns) and (
        "hba1c_mmol_mol" in df or "hba1c_pct" in df
    )
    if extra:
        use = (df.diabetes == 1) & df.age_years.between(40, 70, inclusive="left")
        dm = score2_diabetes(df[use], region) if use.any() else pd.Series(dtype=float)
        ok = dm.notna()
        out.loc[dm.index[ok], "score2_risk"] = dm[ok]
        out.loc[dm.index[ok], "score2_model"] = "SCORE2-Diabetes"
        out["score2_category"] = esc_category(out.score2_risk, df.age_years).to_numpy()
    return out
