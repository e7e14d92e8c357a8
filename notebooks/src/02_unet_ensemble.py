# %% [markdown]
# # 02 · Plaque segmentation: three U-Nets and their voting ensemble
#
# **What you will learn**
# - how U-Nets with three different encoder backbones (`keras.applications`, trained from
#   scratch here; pretrained weights are opt-in from a local file) learn to outline plaque;
# - how a pixel-wise vote combines them, and where they disagree;
# - how segmentation is scored the way Rulloni et al. did: Dice/IoU on images **with** plaque,
#   false alarms on plaque-free images, plus per-plaque detection and plaque-area agreement,
#   each with a bootstrap confidence interval; on the real database, with and without the test
#   images that duplicate training images.

# %% tags=["parameters"]
profile = "workshop"  # smoke | workshop | full
run_dir = None  # default: runs/<profile> (or $CAROTIDKIT_RUNS/<profile>)
seed = 0
backbones = None  # encoders; mobilenetv2 | efficientnetb0 | efficientnetv2b0 | resnet50 | vgg16 | densenet121
epochs = None  # training epochs (at most); 1..100000
batch_size = None  # images per batch; 1..4096
learning_rate = None  # Adam learning rate; 1e-07..1
patience = None  # early stopping on validation Dice [epochs]; 1..100000
vote = None  # pixel-wise vote of the members; majority | mean
n_boot = None  # bootstrap resamples for confidence intervals; 0..100000
weights_dir = None  # local folder with <backbone>.weights.h5 encoder weights (never downloaded)
vflip = None  # share of training images also flipped upside down (0: left-right only); 0..1
n_jobs = None  # U-Nets trained at once, one process each (0: all; 1: one after another) [processes]; 0..64

# %% [markdown]
# ## Setup

# %%
from carotidkit import plots, profiles, segment, tables
from carotidkit.segment.ensemble import PlaqueSegmenter
from carotidkit.segment.metrics import paired_dice

plots.style()
cfg = profiles.notebook_settings("02_unet_ensemble", globals())
cfg

# %% [markdown]
# ## Train the three U-Nets
# Dice + binary cross-entropy loss; left-right flips, shifts and mild gain/contrast augmentation,
# plus upside-down flips of half the images (`vflip`: without them one backbone learned far-wall
# plaques only and missed every near-wall plaque, measured on the workshop data); early
# stopping on validation Dice; `best.keras`, `last.keras` (resumable) and `log.csv` per backbone.
# Train/validation come from 01's group-aware split: duplicates never straddle it.
#
# Keras runs on the **torch** backend by default (set `KERAS_BACKEND=tensorflow` to change it): on 2 CPU cores it trained these U-Nets faster than TensorFlow at the same test Dice. The `keras_backend` column says which backend ran; `train_images_per_s` is the rate this run achieved.
#
# The members train side by side, one process each (`n_jobs`; `processes` and `threads` columns):
# on two cores a small U-Net keeps one thread nearly as busy as two, so three single-thread
# trainings at once finish sooner than three two-thread trainings in a row (`make bench` times both).

# %%
res = segment.run(cfg)
res.train.set_index("backbone")

# %% [markdown]
# ## Learning curves

# %%
fig = plots.learning_curves(res.logs, panels=(("loss", "val_loss"), ("val_dice",)), by="backbone")

# %% [markdown]
# ## Test metrics: single models vs the ensemble
# Dice/IoU on test images with plaque; false alarms (share of plaque-free images with any
# predicted plaque, and the mean false-positive area) on plaque-free ones; per-plaque precision,
# recall and F1; plaque-area bias and limits of agreement (mm², when the pixel spacing is known).
# 95 % bootstrap CIs.

# %%
tables.ci_pivot(res.metrics, "all test")

# %% [markdown]
# Without the test images that duplicate a training image (leakage inflates scores):

# %%
tables.ci_pivot(res.metrics, "test without duplicates", ["dice_mean", "dice_median", "false_alarm_rate"])

# %% [markdown]
# ## Models against a second specialist
# Two specialists never outline a plaque the same way. Where a second reader's masks exist
# (on simulated data: annotator 2, whose style differs from annotator 1's in edge placement,
# smoothing, where a plaque's shoulders end and whether a small plaque is drawn), the table
# scores them against annotator 1 exactly like a model (`annotator 2` column above), and
# below each model's Dice sits beside the reader's on the same plaque images, with the paired
# difference and its bootstrap CI. This is Rulloni et al.'s "comparable to inter-observer
# agreement", measured. Look for models whose point falls inside the grey band: they agree
# with annotator 1 as well as a second specialist does.

# %%
print(res.summary.get("inter_observer", "no second reader"))
res.versus_reader

# %%
fig = plots.reader_comparison(res)

# %% [markdown]
# Is the ensemble better than its best member? With a few dozen test plaques one image can
# swing a mean Dice by 0.03, so the question needs the paired difference on the same images
# (member minus ensemble, bootstrap CI): a CI that includes 0 means the test set cannot tell
# them apart; the false-alarm row of the table above is where the vote usually pays.

# %%
paired_dice(res.predictions, f"ensemble ({res.vote})", cfg.n_boot, cfg.seed)

# %% [markdown]
# The same question on the validation images (they chose each model's best epoch, which
# flatters the single models, not the vote):

# %%
paired_dice(res.validation_predictions, f"ensemble ({res.vote})", cfg.n_boot, cfg.seed)

# %% [markdown]
# ## Best, median and worst test cases (ensemble)
# Yellow: the annotated plaque; blue: the ensemble's prediction.

# %%
fig = plots.best_median_worst(res)

# %% [markdown]
# ## False alarms on plaque-free images

# %%
pe = res.ensemble_predictions()
print(
    f"{int((~pe.has_plaque & pe.any_predicted).sum())} of {int((~pe.has_plaque).sum())} plaque-free test images get some predicted plaque"
)
fig = plots.false_alarms(res)

# %% [markdown]
# ## Where the three models disagree
# Share of models disagreeing with the vote, per pixel (0 = unanimous, 1/3 = one dissenter).

# %%
fig = plots.ensemble_disagreement(res)

# %% [markdown]
# ## Plaque area: ensemble vs annotation (Bland–Altman)
# Look for points scattered evenly around the solid bias line, inside the dashed limits of
# agreement; a slope means the error grows with plaque size.

# %%
fig = plots.area_agreement(res)

# %% [markdown]
# ## Use the ensemble on new images
# `PlaqueSegmenter.load(run_dir / "unet").segment(paths)` cleans raw exports exactly as
# 01_cleaning did, votes the models and returns masks, probabilities and plaque areas.

# %%
seg = PlaqueSegmenter.load(res.unet_dir)
found = seg.segment(res.test_arrays()["images"][:4], preprocessed=True)
found.table

# %% [markdown]
# ## Every subject's plaque burden and IMT
# The saved ensemble now measures the cohort: each subject's B-mode stills (or, where the data has
# none, each cine loop's end-diastolic frame: the line below says which) are cleaned exactly like
# the database, segmented and voted in batches, so memory stays the same for 200 or 15,000
# subjects. On each image it records the plaque area (mm²), the number of plaques and the members'
# disagreement, and traces the far-wall intima–media thickness by dynamic programming (Liang et
# al., IEEE TMI 2000: the lumen–intima and media–adventitia edges as the two best smooth
# rising-edge paths, plaque columns left out). One row per subject goes to
# `unet/subject_plaque.parquet`, which 04 and 05 read: `plaque_area_mm2` is the mean per imaged
# side, `total_plaque_area_mm2` the sum over the sides, `imt_mm` the mean over sides.

# %%
res.subject_source, res.summary.get("subject_agreement", "no planted truth to compare with")

# %%
res.subjects.describe().T.round(3)

# %% [markdown]
# Look for points along the dashed diagonal and Bland–Altman differences centred on zero: on
# simulated data every still has a planted plaque area and IMT, so this is how far the automatic
# measurement is from the truth (a U-Net that misses plaques shows as points on the left-hand axis).

# %%
fig = plots.subject_agreement(res)

# %%
res.subject_agreement.pivot(index="metric", columns="measure", values="estimate").round(3)

# %% [markdown]
# ## What we found
# Written from this run's tables (every number below is looked up in one of them):

# %%
res.findings()

# %% [markdown]
# How to read it: the yardstick is the second reader: a model whose Dice against annotator 1
# falls inside the second specialist's band does what Rulloni et al. claim for their ensemble,
# "comparable to inter-observer agreement"; whether the vote beats its best member is an
# empirical question that the paired difference answers, not a given. On the simulated database the masks are annotator 1's
# tracings, not the true outlines, so no model can reach Dice 1 against them; a model can beat
# the second reader, because it learns annotator 1's habits (where she puts the edge, where a
# plaque's shoulders end) as well as the plaque. Isoechoic plaques, reverberation in the lumen and
# thickened plaque-free walls are where single models go wrong (see the false alarms above).
#
# ## Next
# - `04_xai` shows, with Grad-CAM, where each U-Net looks.
# - `03_vd_video` turns to the cine loops.
