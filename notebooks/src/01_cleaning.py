# %% [markdown]
# # 01 · Cleaning: overlays, scan area, squaring, mask QC, duplicates and leakage
#
# **What you will learn**
# - how burned-in calipers, text and scanner marks are found and inpainted without touching
#   anything else, and how well that works against the simulator's truth;
# - how images are cropped to the scan area, squared and resized with their masks kept aligned;
# - which masks look suspicious, and which images are duplicates that would leak across splits.
#
# Rulloni et al. cleaned the Ar-PlaqSegm1 images by hand; here it is code you can rerun on your
# own exports. Burned-in patient text disappears with the margins: galleries below show images
# with everything outside the scan area blacked out.

# %% tags=["parameters"]
profile = "workshop"  # smoke | workshop | full
run_dir = None  # default: runs/<profile> (or $CAROTIDKIT_RUNS/<profile>)
seed = 0
model_size_px = None  # side of the square images the U-Nets see (five 2x poolings) [px]; 32..1024, multiple of 32
square = None  # pad (keep aspect, black bars) or resize (stretch); pad | resize
undo_stretch = None  # undo an export stretch, e.g. 1.3333 for 4:3 -> square; 0.2..5
inpaint_radius = None  # radius of the inpainting of burned-in marks [px]; 1..50
near_dup_hamming = None  # dHash bits two near-duplicate images may differ in [bits]; 0..64
min_speck_px = None  # mask components smaller than this are flagged as specks [px]; 0..10000
val_fraction = None  # validation share (whole duplicate groups at a time); 0.01..0.9
n_jobs = None  # processes cleaning (0: all cores) [processes]; 0..64
gallery_n = None  # images in the before/after gallery; 0..100
second_reader_dir = None  # a second annotator's masks, named like the database's (simulated: annotator 2)

# %% [markdown]
# ## Setup

# %%
import pandas as pd

from carotidkit import clean, plots, profiles

plots.style()
cfg = profiles.notebook_settings("01_cleaning", globals())
cfg

# %% [markdown]
# ## Clean every image
# Overlay detection → inpainting (only overlay pixels change) → scan-area crop → square
# (`square` policy) → resize to `model_size_px`, the mask through the same steps.

# %%
res = clean.run(cfg)
qc, splits = res.qc, res.splits
pd.Series({k: v for k, v in res.summary.items() if not isinstance(v, dict)}, name="value").to_frame()

# %% [markdown]
# ## Before and after
# Left: the export's scan area (margins with burned-in text are never shown), detected overlays in red. Right: cleaned, at model size,
# with the plaque mask in yellow.

# %%
fig = plots.before_after(res.before_after(cfg.gallery_n), cfg.model_size_px)

# %% [markdown]
# ## How well did cleaning work? (simulated data: scored against the truth)
# The simulator kept, for every export, the overlay-free image and the overlay pixel mask.
# Targets: ≥ 95 % of overlay pixels detected, < 1 % of other pixels changed, and inside the
# overlays the cleaned image closer to the overlay-free original than the export (PSNR).

# %%
display(
    pd.Series(res.summary["score"], name="value").to_frame().round(4) if res.summary["score"] else "no overlay truth"
)
fig = plots.psnr_scatter(qc)

# %% [markdown]
# ## Scan area and geometry
# Margins differ between scanners and exports; the table shows their spread (pixels).

# %%
qc[
    [
        "margin_left",
        "margin_top",
        "margin_right",
        "margin_bottom",
        "overlay_fraction",
        "align_iou",
        "align_shift_model_px",
    ]
].describe().round(3)

# %% [markdown]
# ## Mask QC flags
# Masks outside the scan area, tiny specks, empty masks on images labelled as plaque, masks that
# moved while resizing (centroid shift > 2.5 model pixels after mapping back), and unreadable files.

# %%
flags = [*clean.QC_FLAGS, "flag_error"]
display(qc[flags].sum().rename("images flagged").to_frame())
qc.loc[qc[flags].any(axis=1), ["image_id", "split_shipped", *flags, "error"]].head(20)

# %% [markdown]
# ## Duplicates and leakage
# Exact duplicates (same pixels) and near duplicates (dHash) form groups. A group on both sides
# of a split leaks: the model is tested on an image it trained on. The shipped test split is kept
# as it is, so groups that straddle it stay; later notebooks report test results with and without
# those images, and never split a group between train and validation.

# %%
print(f"{res.summary['duplicate_groups']} duplicate groups; {len(res.leakage)} straddle the shipped train/test split")
res.leakage

# %%
fig = plots.duplicate_pairs(res)

# %% [markdown]
# ## Splits for training (group-aware)

# %%
pd.crosstab(splits.split, splits.has_plaque, margins=True).rename(columns={False: "no plaque", True: "plaque"})

# %% [markdown]
# ## What we found
# Written from this run's tables (every number below is looked up in one of them):

# %%
res.findings()

# %% [markdown]
# ## Next
# - `02_unet_ensemble` trains the three U-Nets on these cleaned images and masks.
