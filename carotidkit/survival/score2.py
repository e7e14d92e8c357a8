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

#: SCORE2 (40-69): coefficients per sex; terms use cage=(age-60)/5, csbp=(sbp-120)/20,
#: ctc=tc-6, chdl=(hdl-1.3)/0.5.
SCORE2_COEF = {
    "male": dict(
        cage=0.3742,
        smoking=0.6012,
        csbp=0.2777,
        diabetes=0.6457,
        ctc=0.1458,
        chdl=-0.2698,
        cage_smoking=-0.0755,
        cage_csbp=-0.0255,
        cage_ctc=-0.0281,
        cage_chdl=0.0426,
        cage_diabetes=-0.0983,
        s0=0.9605,
    ),
    "female": dict(
        cage=0.4648,
        smoking=0.7744,
        csbp=0.3131,
        diabetes=0.8096,
        ctc=0.1002,
        chdl=-0.2606,
        cage_smoking=-0.1088,
        cage_csbp=-0.0277,
        cage_ctc=-0.0226,
        cage_chdl=0.0613,
        cage_diabetes=-0.1272,
        s0=0.9776,
    ),
}
#: region recalibration (a, b): risk = 1 - exp(-exp(a + b * ln(-ln(1 - p))))
SCORE2_SCALES = {
    "male": {
        "low": (-0.5699, 0.7476),
        "moderate": (-0.1565, 0.8009),
        "high": (0.3207, 0.9360),
        "very high": (0.5836, 0.8294),
    },
    "female": {
        "low": (-0.7380, 0.7019),
        "moderate": (-0.3143, 0.7701),
        "high": (0.5710, 0.9369),
        "very high": (0.9412, 0.8329),
    },
}
#: SCORE2-OP (>= 70): centred age-73, sbp-150, tc-6, hdl-1.4; interactions with (age-73).
OP_COEF = {
    "male": dict(
        age=0.0634,
        diabetes=0.4245,
        smoking=0.3524,
        sbp=0.0094,
        tc=0.0850,
        hdl=-0.3564,
        age_diabetes=-0.0174,
        age_smoking=-0.0247,
        age_sbp=-0.0005,
        age_tc=0.0073,
        age_hdl=0.0091,
        s0=0.7576,
        mean_lp=0.0929,
    ),
    "female": dict(
        age=0.0789,
        diabetes=0.6010,
        smoking=0.4921,
        sbp=0.0102,
        tc=0.0605,
        hdl=-0.3040,
        age_diabetes=-0.0107,
        age_smoking=-0.0255,
        age_sbp=-0.0004,
        age_tc=-0.0009,
        age_hdl=0.0154,
        s0=0.8082,
        mean_lp=0.229,
    ),
}
OP_SCALES = {
    "male": {"low": (-0.34, 1.19), "moderate": (0.01, 1.25), "high": (0.08, 1.15), "very high": (0.05, 0.70)},
    "female": {"low": (-0.52, 1.01), "moderate": (-0.10, 1.10), "high": (0.38, 1.09), "very high": (0.38, 0.69)},
}
#: SCORE2-Diabetes (40-69): SCORE2 centring plus cdm_age=(age at diagnosis-50)/5,
#: chba1c=(HbA1c mmol/mol-31)/9.34, cegfr=(ln eGFR-4.5)/0.15.
DIABETES_COEF = {
    "male": dict(
        cage=0.5368,
        smoking=0.4774,
        csbp=0.1322,
        diabetes=0.6457,
        ctc=0.1102,
        chdl=-0.1087,
        cage_smoking=-0.0672,
        cage_csbp=-0.0268,
        cage_diabetes=-0.0983,
        cage_ctc=-0.0181,
        cage_chdl=0.0095,
        diabetes_cdm_age=-0.0998,
        chba1c=0.0955,
        cegfr=-0.0591,
        cegfr2=0.0058,
        chba1c_cage=-0.0134,
        cegfr_cage=0.0115,
        s0=0.9605,
    ),
    "female": dict(
        cage=0.6624,
        smoking=0.6139,
        csbp=0.1421,
        diabetes=0.8096,
        ctc=0.1127,
        chdl=-0.1568,
        cage_smoking=-0.1122,
        cage_csbp=-0.0167,
        cage_diabetes=-0.1272,
        cage_ctc=-0.0200,
        cage_chdl=0.0186,
        diabetes_cdm_age=-0.1180,
        chba1c=0.1173,
        cegfr=-0.0640,
        cegfr2=0.0062,
        chba1c_cage=-0.0196,
        cegfr_cage=0.0169,
        s0=0.9776,
    ),
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


def _by_sex(df, table, key):
    male = (df["sex"] == "male").to_numpy()
    return np.where(male, table["male"][key], table["female"][key])


def _recalibrate(p, a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 - np.exp(-np.exp(a + b * np.log(-np.log(1 - p))))


def _score2_core(df, region):
    g = lambda k: _by_sex(df, SCORE2_COEF, k)  # noqa: E731
    cage = (df.age_years.to_numpy(float) - 60) / 5
    csbp = (df.sbp_mmhg.to_numpy(float) - 120) / 20
    ctc = df.tc_mmol_l.to_numpy(float) - 6
    chdl = (df.hdl_mmol_l.to_numpy(float) - 1.3) / 0.5
    smk, dm = df.smoking.to_numpy(float), df.diabetes.to_numpy(float)
    lp = (
        g("cage") * cage
        + g("smoking") * smk
        + g("csbp") * csbp
        + g("diabetes") * dm
        + g("ctc") * ctc
        + g("chdl") * chdl
        + g("cage_smoking") * cage * smk
        + g("cage_csbp") * cage * csbp
        + g("cage_ctc") * cage * ctc
        + g("cage_chdl") * cage * chdl
        + g("cage_diabetes") * cage * dm
    )
    p = 1 - g("s0") ** np.exp(lp)
    a, b = (
        _by_sex(df, {s: {"a": SCORE2_SCALES[s][region][0]} for s in SCORE2_SCALES}, "a"),
        _by_sex(df, {s: {"b": SCORE2_SCALES[s][region][1]} for s in SCORE2_SCALES}, "b"),
    )
    return _recalibrate(p, a, b)


def _op_core(df, region):
    g = lambda k: _by_sex(df, OP_COEF, k)  # noqa: E731
    age = df.age_years.to_numpy(float) - 73
    sbp = df.sbp_mmhg.to_numpy(float) - 150
    tc = df.tc_mmol_l.to_numpy(float) - 6
    hdl = df.hdl_mmol_l.to_numpy(float) - 1.4
    smk, dm = df.smoking.to_numpy(float), df.diabetes.to_numpy(float)
    lp = (
        g("age") * age
        + g("diabetes") * dm
        + g("smoking") * smk
        + g("sbp") * sbp
        + g("tc") * tc
        + g("hdl") * hdl
        + g("age_diabetes") * age * dm
        + g("age_smoking") * age * smk
        + g("age_sbp") * age * sbp
        + g("age_tc") * age * tc
        + g("age_hdl") * age * hdl
    )
    p = 1 - g("s0") ** np.exp(lp - g("mean_lp"))
    a = _by_sex(df, {s: {"a": OP_SCALES[s][region][0]} for s in OP_SCALES}, "a")
    b = _by_sex(df, {s: {"b": OP_SCALES[s][region][1]} for s in OP_SCALES}, "b")
    return _recalibrate(p, a, b)


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
    g = lambda k: _by_sex(d, DIABETES_COEF, k)  # noqa: E731
    cage = (d.age_years.to_numpy(float) - 60) / 5
    csbp = (d.sbp_mmhg.to_numpy(float) - 120) / 20
    ctc = d.tc_mmol_l.to_numpy(float) - 6
    chdl = (d.hdl_mmol_l.to_numpy(float) - 1.3) / 0.5
    smk, dm = d.smoking.to_numpy(float), d.diabetes.to_numpy(float)
    cdm = np.where(dm > 0, (d.age_at_diabetes_years.to_numpy(float) - 50) / 5, 0.0)
    chba1c = (d.hba1c_mmol_mol.to_numpy(float) - 31) / 9.34
    with np.errstate(divide="ignore", invalid="ignore"):
        cegfr = (np.log(d.egfr_ml_min.to_numpy(float)) - 4.5) / 0.15
    lp = (
        g("cage") * cage
        + g("smoking") * smk
        + g("csbp") * csbp
        + g("diabetes") * dm
        + g("ctc") * ctc
        + g("chdl") * chdl
        + g("cage_smoking") * cage * smk
        + g("cage_csbp") * cage * csbp
        + g("cage_diabetes") * cage * dm
        + g("cage_ctc") * cage * ctc
        + g("cage_chdl") * cage * chdl
        + g("diabetes_cdm_age") * dm * cdm
        + g("chba1c") * chba1c
        + g("cegfr") * cegfr
        + g("cegfr2") * cegfr**2
        + g("chba1c_cage") * chba1c * cage
        + g("cegfr_cage") * cegfr * cage
    )
    p = 1 - g("s0") ** np.exp(lp)
    a = _by_sex(d, {s: {"a": SCORE2_SCALES[s][region][0]} for s in SCORE2_SCALES}, "a")
    b = _by_sex(d, {s: {"b": SCORE2_SCALES[s][region][1]} for s in SCORE2_SCALES}, "b")
    return pd.Series(_recalibrate(p, a, b), index=df.index, name="score2_diabetes_risk")


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
