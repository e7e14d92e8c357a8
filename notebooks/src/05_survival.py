# %% [markdown]
# # 05 · Vascular damage against SCORE2: survival, competing risks, discrimination, calibration
#
# **What you will learn**
# - whether a high vascular-damage score (VD, from 03) goes with more myocardial infarction (MI),
#   cardiac death and all-cause death, crude and after SCORE2;
# - how VD compares with SCORE2 as a *ranking* (Harrell's and Uno's C, time-dependent AUC) and
#   whether it adds to SCORE2 (ΔC with a paired bootstrap CI, likelihood-ratio test, NRI, IDI);
# - how well the *absolute* risks are calibrated and whether they help decisions (the STRATOS
#   checklist: O/E, calibration slope, ICI, Brier/IPA, net benefit);
# - why MI and cardiac death need competing-risk methods (Aalen–Johansen, Fine–Gray).
#
# **Read this first.** SCORE2 predicts 10-year *fatal plus non-fatal cardiovascular disease*, not
# MI alone, not cardiac death alone and not all-cause death. Its published risks are therefore
# shown as a risk (calibration will be off for these endpoints, as it should) and as a ranking.
# Fair absolute-risk comparisons use SCORE2 *recalibrated* to each endpoint by a cross-validated
# Cox model, against SCORE2 + VD fitted the same way.

# %% tags=["parameters"]
profile = "workshop"  # smoke | workshop | full
run_dir = None  # default: runs/<profile> (or $CAROTIDKIT_RUNS/<profile>)
seed = 0
region = None  # SCORE2 risk region (Germany: moderate); low | moderate | high | very high
horizon_years = None  # horizon of absolute risks, calibration and NRI [years]; 0.5..40
groups = None  # VD groups for Kaplan–Meier (4: quartiles, 3: tertiles); 3..5
n_boot = None  # bootstrap replicates for CIs; 0..100000
vd_source = None  # 03's out-of-fold score, or the simulator's vd_true; vd | truth
ph_transform = None  # g(t) of the proportional-hazards test (R's cox.zph default: km); km | rank | identity | log

# %% [markdown]
# ## Setup

# %%
from carotidkit import plots, profiles, survival, tables

plots.style()
cfg = profiles.notebook_settings("05_survival", globals())
cfg

# %% [markdown]
# ## Run the analysis
# One call: the cohort from 00 and the out-of-fold VD from 03 are joined by `subject_id`, SCORE2
# is computed (SCORE2-OP from 70, SCORE2-Diabetes where its inputs exist; flags say which and why),
# and every table below is computed and written to the run folder.

# %%
res = survival.run(cfg)
res.notes_text()

# %% [markdown]
# ## VD vs SCORE2 at a glance
# Per endpoint: hazard ratio per SD of VD (crude and SCORE2-adjusted), Harrell's C of SCORE2, of
# VD and of both, the paired-bootstrap ΔC, and reclassification (NRI) at the horizon.

# %%
journal = res.tables()  # every table of the result, the journal tables included
journal["added_value"]

# %% [markdown]
# ## Risk scores in this cohort
# Which score each person got, and every rule that was applied (age outside a model's range,
# missing inputs) is visible in `score2_flag`.

# %%
journal["score2_use"]

# %%
res.analysis.groupby("score2_category", observed=True).score2_risk.describe().round(3)

# %% [markdown]
# ## Participants, missing data and follow-up (TRIPOD+AI items 10, 11, 20a)
# Look at how many people each step loses and why (the boxes on the right): a large loss at the
# video step means VD describes a selected group. Below the diagram: the same flow as a table, how many values are missing and how each
# is handled (complete-case throughout: no imputation), the median follow-up by reverse
# Kaplan–Meier, person-years and event rates, and the events per candidate variable of each
# endpoint's largest model (fewer than 10 means wide intervals and fragile estimates).

# %%
fig = plots.flow_diagram(journal["flow"])

# %%
journal["flow"]

# %%
journal["missing_data"]

# %%
journal["follow_up"].round(2)

# %%
journal["events_per_variable"].round(1)

# %% [markdown]
# ## Table 1: participants by VD quartile
# Mean (SD) or n (%); SMD is the standardised difference between the highest and the lowest
# quartile (|SMD| > 0.1 is the usual flag for an imbalance worth a sentence).

# %%
journal["table1_by_vd"]

# %% [markdown]
# ## Kaplan–Meier by VD quartile and by SCORE2 category
# Look for curves that fan out in order (Q1 lowest, Q4 highest) and compare how far apart they
# are with the SCORE2 categories; the trend test asks whether risk rises steadily across groups.

# %%
fig = plots.km_groups(res, "death", "VD")

# %%
fig = plots.km_groups(res, "death", "SCORE2 category")

# %% [markdown]
# For MI and cardiac death, death from other causes competes: the curves below are 1 − KM, a
# cause-specific view that overstates absolute risk; the absolute risks are the Aalen–Johansen
# curves of the next section.

# %%
fig = plots.km_groups(res, "mi", "VD")

# %%
fig = plots.km_groups(res, "cardiac_death", "VD")

# %%
tables.readable(res.km_tests)

# %% [markdown]
# ## Competing risks: MI and cardiac death when people can die of other causes
# Look at the gap between the solid Aalen–Johansen curves and the dotted 1 − KM curves: 1 − KM
# treats other deaths as if they could still have an MI later and so overstates risk, most in
# the high-VD group where other deaths are common.

# %%
fig = plots.cif_plot(res, "mi")

# %%
fig = plots.cif_plot(res, "cardiac_death")

# %% [markdown]
# ## Cox models: VD per SD with increasing adjustment
# Look at how much of the crude hazard ratio survives adjustment for SCORE2 and for the full set
# of risk factors: what survives is what VD carries beyond them.

# %%
vd_rows = res.cox.query("term == 'vd_z'") if len(res.cox) else res.cox
fig = plots.forest(vd_rows)

# %% [markdown]
# Table 2: hazard ratio per SD of VD (95 % CI) for each endpoint, from crude to fully adjusted.

# %%
journal["table2"][["endpoint", "adjustment", "events", "HR (95 % CI)", "p"]]

# %% [markdown]
# Likelihood-ratio test for adding VD to SCORE2, and the proportional-hazards test of R's
# `cox.zph` (the exact score test of x·g(t), per term and globally, g = 1 − Kaplan–Meier by default;
# a small p means the hazard ratio changes over time).

# %%
tables.readable(res.lr)

# %%
tables.readable(res.ph)

# %% [markdown]
# Look for a smooth (red) that stays flat around the dashed line: a trend up or down means that
# term's hazard ratio changes with follow-up time (scaled Schoenfeld residuals, as R's `plot(cox.zph)`).

# %%
fig = plots.ph_residuals(res, "mi")

# %% [markdown]
# Cause-specific Cox and Fine–Gray subdistribution hazard ratios for MI and cardiac death. The
# cause-specific HR answers "does VD speed up MI among those still alive?"; the Fine–Gray SHR
# answers "do people with high VD accumulate more MI, all deaths considered?".

# %%
fig = plots.forest(
    res.fine_gray.query("term == 'vd_z'") if len(res.fine_gray) else res.fine_gray,
    value="shr",
    xlabel="hazard ratio per SD of VD (cause-specific or subdistribution)",
)

# %%
tables.readable(res.fine_gray)

# %% [markdown]
# ## Discrimination and added value
# Look for whether the SCORE2 + VD interval lies to the right of SCORE2's; the ΔC column of the
# table gives the paired bootstrap CI of that difference (same resamples for both models).

# %%
fig = plots.c_index_plot(res)

# %% [markdown]
# What VD adds to SCORE2, per endpoint, in one table: Harrell's C, ΔC with its paired bootstrap
# CI, the likelihood-ratio test, and the continuous and categorical NRI at the horizon (the
# categories are ESC's age-specific SCORE2 thresholds: under 50 years < 2.5 % / 2.5–7.5 % / ≥ 7.5 %,
# 50–69 years < 5 % / 5–10 % / ≥ 10 %, 70 and over < 7.5 % / 7.5–15 % / ≥ 15 %).

# %%
journal["added_value"]

# %% [markdown]
# Time-dependent AUC (cumulative cases, dynamic controls) at 5 years and at the horizon, with
# bootstrap CIs:

# %%
survival.td_auc_table(res)

# %% [markdown]
# ## VD beyond the carotid markers on the same scan: plaque burden and IMT
# The first question a cardiologist asks of a new video score is whether it adds anything beyond
# the plaque and intima–media thickness already visible on the same scan. 02 measured both on
# every subject's B-mode images (`unet/subject_plaque.parquet`); here, per endpoint and on the
# subjects with all three measures, six nested models are fitted as cause-specific Cox and
# Fine–Gray: SCORE2; + plaque burden (per SD of log(1 + area)); + IMT; + VD; + plaque + IMT (the
# carotid reference); + VD + plaque + IMT. C is cross-validated (5 folds) and every ΔC is a
# paired bootstrap on the same resamples. Look at the last row of each endpoint: does VD's
# hazard ratio keep its CI above 1 with plaque and IMT in the model, and does its ΔC beyond
# plaque + IMT exclude zero? On the simulator the hazards depend on the latent damage only and
# plaques and IMT grow with it (with noise), so each marker alone has an HR above 1 and VD's
# adjusted HR is expected above 1 too, by as much as 03 measured the damage well.

# %%
res.carotid_table()

# %% [markdown]
# Kaplan–Meier by plaque presence on the subject's images: look for the plaque curve above the
# plaque-free one, and compare the gap with the VD quartiles above.

# %%
fig = plots.km_groups(res, "mi", "plaque")

# %% [markdown]
# Reclassification of the full model (SCORE2 + VD + plaque + IMT) against SCORE2, both
# cross-validated Cox risks at the horizon (NRI at the ESC categories and category-free, IDI):

# %%
tables.readable(res.carotid_reclassification)

# %% [markdown]
# ## Calibration and clinical utility at the horizon
# Look at the published SCORE2 curve against the diagonal (it predicts a different outcome, so it
# should be off) and at the two cross-validated models, which should hug the diagonal. The curve is
# Austin et al.'s (Stat Med 2020; 2022 for competing risks): a Cox (Fine–Gray) model on a restricted
# cubic spline of cloglog(predicted risk); ICI, E50 and E90 are the mean, median and 90th percentile
# of |predicted − observed| on it. O/E is the Kaplan–Meier (Aalen–Johansen) risk over the mean
# predicted risk; calibration-in-the-large (slope fixed at 1) and the slope are reported separately.

# %%
fig = plots.calibration_plot(res, "mi")

# %%
fig = plots.calibration_plot(res, "cardiac_death")

# %%
fig = plots.calibration_plot(res, "death")

# %%
res.calibration_table()

# %% [markdown]
# Each metric and NRI variant, with the definition it uses (checked against R on public cohorts in the test suite):

# %%
survival.definitions(res)

# %% [markdown]
# Decision curves: look for the thresholds where SCORE2 + VD lies above SCORE2 and above both
# "treat all" and "treat none"; only there would using VD change decisions for the better.

# %%
fig = plots.decision_curve(res, "mi")

# %%
fig = plots.decision_curve(res, "cardiac_death")

# %%
fig = plots.decision_curve(res, "death")

# %% [markdown]
# ## What we found
# Written from this run's tables (every number below is looked up in one of them):

# %%
res.findings()

# %% [markdown]
# Published SCORE2 over-predicts MI and cardiac death because it predicts all CVD events; the
# recalibrated models are the fair comparison.
#
# ## Next
# - `04_xai` explains what the video model looks at and how VD relates to each risk factor.
# - On a real cohort: set `cohort_path` and `column_map` in 00, run 03 on your videos, then this
#   notebook; check the flags table for people outside SCORE2's age range.
