# %% [markdown]
# # 03 · Vascular damage from carotid cine loops
#
# **What you will learn**
# - how a video network (an R(2+1)D residual network by default; a small video transformer with
#   optional VideoMAE-style self-supervised pretraining as the alternative) learns to recognise
#   hypertension from carotid ultrasound loops — a *weak, noisy* proxy of vascular damage;
# - why the score must be **cross-fitted**: every subject's VD comes from a model that never saw
#   that subject (K folds at subject level, all clips and both sides of a person in one fold);
# - how to judge it: AUROC, plain accuracy (the paper's measure) and balanced accuracy with
#   subject-bootstrap CIs, calibration, and, on simulated data, how well VD recovers the latent
#   damage beyond age, sex and blood pressure;
# - whether the network learns anything a histogram does not: a handcrafted baseline (grey-level
#   percentiles, pulsatility, lumen diameter and distension measured from the loop) cross-fitted
#   on the same folds, with the paired difference in AUROC;
# - how consistent VD is between a person's left and right carotid.
#
# The same code runs at cohort scale on GPUs: `torchrun --nproc_per_node=N -m carotidkit.vd.train
# --run-dir runs/full` (see the README).

# %% tags=["parameters"]
profile = "workshop"  # smoke | workshop | full
run_dir = None  # default: runs/<profile> (or $CAROTIDKIT_RUNS/<profile>)
seed = 0
architecture = None  # video network; r2plus1d | vivit
folds = None  # K of the cross-fitting; 2..50
epochs = None  # training epochs per fold (at most); 1..100000
batch_size = None  # clips per batch; 1..4096
learning_rate = None  # peak AdamW learning rate; 1e-07..1
weight_decay = None  # AdamW weight decay; 0..1
frames = None  # frames per clip; 2..512
period = None  # take every period-th frame (8 x 4 at 25 fps covers one heart beat); 1..64
input_size_px = None  # clips are resized to this square [px]; 16..1024, multiple of 8
clip_seconds = None  # seconds of each loop cached; all its windows are scored [s]; 0.2..120
clips_per_video = None  # random windows drawn from each loop per epoch; 1..64
width = None  # channels of the first stage; 2..1024
depth = None  # residual blocks per stage; 1..16
dropout = None  # dropout before the head; 0..0.9
schedule = None  # learning-rate schedule; onecycle | constant
patience = None  # early stopping on inner-validation AUROC [epochs]; 1..100000
val_fraction = None  # inner validation share of each training fold; 0.05..0.5
pretrain_epochs = None  # VideoMAE pretraining epochs (vivit only); 0..10000
weights_path = None  # local state_dict to start from (never downloaded)
label = None  # the weak proxy label: a 0/1 column of the cohort
n_boot = None  # bootstrap resamples for CIs; 0..100000
n_jobs = None  # processes decoding videos into the cache (0: all cores) [processes]; 0..64

# %% [markdown]
# ## Setup

# %%
from carotidkit import plots, profiles, vd

plots.style()
cfg = profiles.notebook_settings("03_vd_video", globals())
cfg

# %% [markdown]
# ## Train the cross-fitted models
# Videos are decoded once into a memory-mapped cache; each fold trains on the other folds'
# subjects (with an inner validation split for early stopping) and scores its own subjects with
# every clip window of every loop. Checkpoints are keyed on the settings and the data: rerunning
# resumes, changing anything retrains.

# %%
res = vd.run(cfg)
res.metrics.round(3)

# %% [markdown]
# ## Learning curves per fold
# Look for validation loss that falls with training loss and validation AUROC that rises; a
# widening gap means over-fitting, and early stopping keeps the best epoch.

# %%
fig = plots.learning_curves(res.log)

# %% [markdown]
# ## Does VD recognise hypertension?
# Look at the AUROC and its subject-bootstrap CI: the label is a noisy proxy, so a moderate AUROC
# is expected and a near-perfect one would suggest leakage.

# %%
fig = plots.roc_plot(res)

# %% [markdown]
# ## Network vs a handcrafted baseline
# The baseline is what an image-processing pipeline measures without deep learning: grey-level
# percentiles (10th, 50th, 90th) of the whole loop, the mean per-pixel temporal SD (pulsatility),
# and the lumen diameter and its distension tracked on the loop's depth profile. An L2 logistic
# regression on these, side-averaged, is fitted on exactly the network's training folds and
# predicts each held-out subject once. The difference in AUROC is paired: each bootstrap sample
# resamples subjects once and scores both models on them. Accuracy is at predicted probability
# 0.5 (logit 0), the threshold the paper states; the paper reports 75.7 %.

# %%
res.comparison()

# %% [markdown]
# Look at the left panel's two curves and the ΔAUROC CI in its title: a CI above 0 means the
# network sees something in the loops the whole-loop statistics do not. On simulated data the
# other panels show each score against the planted damage: the network's cloud should be tighter.

# %%
fig = plots.baseline_comparison(res)

# %% [markdown]
# Look for calibration points near the diagonal, a clear VD shift with hypertension, and VD rising
# with age (arteries stiffen and thicken with age).

# %%
fig = plots.vd_panels(res)

# %%
res.by_group().round(3)

# %% [markdown]
# ## Per-side VD and left–right agreement
# Each loop gets its own out-of-fold score. Every fold's model has its own logit scale (one may be
# more confident than another), so scores are standardised **within each fold** before they are
# pooled: `vd_z` is the subject's mean logit standardised within its fold, `vd_z_max` (the worse
# side) the named alternative. For people filmed on both sides, the table gives the ICC (two-way,
# absolute agreement), the Spearman correlation and the Bland–Altman bias and 95 % limits of the
# left- and right-side scores, with subject-bootstrap CIs.

# %%
res.agreement.round(3)

# %% [markdown]
# Look for points along the diagonal on the left and a bias near 0 with narrow limits on the
# right: vascular damage is systemic, so both carotids should score alike; wide limits mean one
# loop per side is a noisy measurement and the mean of both sides is the better VD.

# %%
fig = plots.left_right(res)

# %% [markdown]
# ## Loops of low, median and high VD
# Look at the far wall's thickness, plaques, the tissue around the vessel and how much the
# artery distends with each beat.

# %%
loops, titles = res.example_loops()
plots.animate_clips(loops, titles=titles)

# %% [markdown]
# ## VD against the simulator's latent vascular damage (synthetic data only)
# Look for a monotone cloud: the Spearman correlation says how well VD ranks the planted damage;
# the partial correlation, after age, sex and SBP, says how much it sees beyond those risk factors.

# %%
fig = plots.vd_vs_truth(res)

# %% [markdown]
# Videos that could not be read (one line each; empty when all were read):

# %%
res.errors

# %% [markdown]
# Real loops are cropped to the scan area and their burned-in overlays (text, depth scale,
# calipers) masked before caching, as 01 cleans stills. Look for every mark covered and the tissue
# left alone; the table says where each loop's pixel spacing came from (`unknown` is never
# replaced by a default).

# %%
fig = plots.cine_redaction(res.redaction_example())

# %%
res.geometry()

# %% [markdown]
# ## What we found
# Written from this run's tables (every number below is looked up in one of them):

# %%
res.findings()

# %% [markdown]
# Hypertension is a weak label, so moderate values are expected. A ΔAUROC CI above 0 is evidence
# that the network learns more than whole-loop statistics; the left–right table says how
# reproducible one side's VD is.
#
# ## Next
# - `04_xai` asks where in the loop the model looks (vessel wall vs perivascular tissue).
# - `05_survival` relates VD to MI, cardiac death and death, next to SCORE2.
