# %% [markdown]
# # 00 · Data: the cohort, the plaque images and the cine loops
#
# **What you will learn**
# - what data every later notebook works on, and where it lives in the run folder;
# - what the carotid simulator plants (and therefore what later notebooks should recover);
# - how to replace any part with your own data (set `plaque_db_dir`, `cohort_path`, `video_dir`).
#
# By default the data are **simulated** by `carotidkit.synth`: B-mode speckle physics for the
# images, a cardiac-cycle wall motion for the cine loops, and a population cohort with a latent
# vascular damage (`vd_true`) that drives the images and, beside the SCORE2 risk factors, the
# hazards of myocardial infarction, cardiac death and death from other causes.

# %% tags=["parameters"]
profile = "workshop"  # smoke | workshop | full
run_dir = None  # default: runs/<profile> (or $CAROTIDKIT_RUNS/<profile>)
seed = 0
n_subjects = None  # simulated subjects (both sides filmed); 5..1e+06
n_plaque_images = None  # simulated plaque-database images; 4..100000
plaque_db_size_px = None  # side of the simulated database images [px]; 64..4096
cine_size_px = None  # side of the simulated cine loops [px]; 16..1024
cine_seconds = None  # length of each simulated loop [s]; 0.2..60
vd_hr_per_sd = None  # planted hazard ratio of the latent damage per SD; 0.1..10
followup_years = None  # administrative end of simulated follow-up [years]; 0.5..60
vd_pattern = None  # how damage shows in the loops: local (far-wall perivascular texture, wall stiffening) or global (perivascular brightness and pulsatility: simulator version 5); local | global
vd_signal = None  # strength of the local damage signature in the loops (0: none); 0..5
acquisition = None  # per-loop variation of gain, TGC, dynamic range, depth, probe angle and motion (0: fixed); 0..3
stills_per_side = None  # simulated B-mode stills per filmed side (0: none; 02 then uses each loop's end-diastolic frame); 0..10
still_size_px = None  # side of the simulated stills (database style: 4:3 stretched) [px]; 128..4096
n_jobs = None  # processes simulating (0: all cores) [processes]; 0..64
plaque_db_dir = None  # your Ar-PlaqSegm1-style folder (train/ test/)
cohort_path = None  # your cohort table (CSV, Parquet, Stata, SAS, Excel)
column_map = None  # YAML mapping your column names/units onto carotidkit's
cohort_encoding = None  # text encoding of a CSV cohort that is not UTF-8; utf-8 | latin-1 | cp1252 | utf-16
cohort_sep = None  # separator of a CSV cohort that is not comma-separated; , | ; | 	 | |
video_dir = None  # your cine loops (DICOM, AVI/MP4, NPY/NPZ, frame folders)
still_dir = None  # your per-subject B-mode stills: a folder of <subject>_<left|right|L|R>[_n].png/.jpg/.dcm, or a manifest (subject_id, side, path[, pixel_spacing_row_mm, pixel_spacing_col_mm])
gallery_n = None  # images in the gallery; 0..100

# %% [markdown]
# ## Setup
# The settings below are the profile's values, overridden by anything set in the parameters cell.

# %%
import pandas as pd

from carotidkit import data, plots, profiles, tables
from carotidkit.report import versions

plots.style()
cfg = profiles.notebook_settings("00_data", globals())
cfg

# %% [markdown]
# ## Build the run's data folder
# Simulated parts are cached by (seed, parameters): rerunning with the same settings reuses them.

# %%
res = data.run(cfg)
manifest, paths = res.manifest, res.paths
display(pd.Series(manifest["sources"], name="source").to_frame())
pd.Series(manifest["counts"], name="count").to_frame()

# %%
pd.Series(manifest["timings"], name="seconds").to_frame()

# %% [markdown]
# ## Plaque images
# Exported frames as the scanner wrote them: a scan area inside black margins, burned-in text,
# caliper crosses and scanner marks (red contours: the overlay pixels the simulator kept as
# truth), plaques outlined in yellow. `01_cleaning` has to remove the overlays. Everything
# outside the scan area (patient names, ids, dates) is blacked out before display.
# On simulated data the gallery first shows the database's harder cases, one each (named under
# the image): an isoechoic plaque (as bright as the wall it sits on), an irregular one (ulcerated
# surface, heterogeneous body), a calcified one with its shadow, a plaque-free wall with diffuse
# intima–media thickening (no mask: thickening is not plaque), and reverberation ghosts in the
# lumen below the near wall. The masks are annotator 1's; a second simulated annotator traced
# the same images differently, and 02 uses those masks as the yardstick for the models.

# %%
db = res.plaque_db
db.groupby("split").agg(
    images=("image_id", "size"),
    with_plaque=("has_plaque", "sum"),
    rgb_masks=("mask_rgb", "sum"),
    non_binary_masks=("mask_nonbinary", "sum"),
    unusable=("error", "count"),
)

# %%
res.file_errors  # files 01 leaves out, with the reason (empty = every file was usable)

# %%
fig = plots.gallery(**res.gallery_images(cfg.gallery_n, cfg.seed))

# %% [markdown]
# ## Cine loops
# A few loops side by side; the artery distends with every beat, less when it is stiff.

# %%
clip_rows = res.clips.head(3)
clips = [data.load_video(p) for p in clip_rows.path]
plots.animate_clips([c.frames for c in clips], titles=list(clip_rows.clip_id), fps=clips[0].fps or 25)

# %% [markdown]
# Which cohort subjects have loops: with real data the ids of the cohort and of the videos are
# joined as text, and those without a partner are counted here with a few examples (a join that
# matches nobody stops 00 with one line).

# %%
res.id_join()

# %% [markdown]
# ## The cohort: Table 1 by hypertension status
# Hypertension as epidemiologists define it: SBP ≥ 140 mmHg, DBP ≥ 90 mmHg or treated.

# %%
cohort = res.cohort
print(f"{len(cohort)} subjects; hypertension {cohort.hypertension.mean():.1%}")
tables.table1(cohort, by="hypertension")

# %% [markdown]
# ## Events over follow-up
# Myocardial infarction (death is a competing event), cardiac death (other death competing), and
# all-cause death. Kaplan–Meier cumulative incidence by sex.

# %%
from carotidkit.synth.cohort import event_rates

event_rates(cohort)

# %%
fig = plots.km_overview(cohort, by="sex")

# %% [markdown]
# ## What the simulator planted (truth)
# `vd_true` is the latent vascular damage. The video notebook's score should track it; here is
# how it relates to what we can observe.

# %%
from carotidkit.synth.dataset import truth_summary

truth, corr = truth_summary(paths["cohort"].parent) if manifest["sources"]["cohort"] == "synthetic" else (None, None)
display(corr.to_frame().round(2) if corr is not None else "Real cohort: no simulator truth to show.")
fig = plots.truth_panels(truth) if truth is not None else None

# %% [markdown]
# ## Provenance
# Parameters, data hashes and package versions of this run (also on the report index).

# %%
pd.DataFrame({"hash": manifest["data_hashes"]})

# %%
pd.Series(versions(), name="version").to_frame()

# %% [markdown]
# ## What we found
# Written from this run's tables (every number below is looked up in one of them):

# %%
res.findings()

# %% [markdown]
# ## Next
# - `01_cleaning` removes the burned-in overlays and squares the images for the U-Nets.
# - `03_vd_video` learns VD from the cine loops.
