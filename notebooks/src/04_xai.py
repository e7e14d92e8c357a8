# %% [markdown]
# # 04 · Explaining VD with numbers
#
# **What you will learn**
# - where in a carotid loop the video model looks, as numbers: attribution mass per anatomical
#   region (lumen, near wall, far wall, plaque, perivascular tissue, background) divided by the
#   region's area share, so 1 means "no preference" — with subject-bootstrap CIs, over the whole
#   cardiac cycle and in systole vs diastole;
# - whether the explanations depend on the model at all (cascading parameter randomisation,
#   Adebayo et al. 2018) and whether they are faithful (deleting the most-attributed pixels first
#   should hurt the prediction faster than deleting random ones);
# - how VD relates to risk factors, labs and comorbidities: an adjusted regression next to SHAP
#   on a gradient-boosted model.
#
# Explanations use fold 0's model on fold 0's own held-out subjects, so the model never saw them.

# %% tags=["parameters"]
profile = "workshop"  # smoke | workshop | full
run_dir = None  # default: runs/<profile> (or $CAROTIDKIT_RUNS/<profile>)
seed = 0
n_explain = None  # out-of-fold subjects explained, spread over the VD range; 2..100000
n_sanity = None  # clips in the cascading-randomisation test; 1..10000
methods = None  # captum attribution methods; integrated_gradients | occlusion | grad_cam
n_boot = None  # subject-bootstrap replicates; 0..100000
baseline = None  # reference input of IG and Occlusion: a black (anechoic) or mean frame; anechoic | mean

# %% [markdown]
# ## Setup

# %%
from carotidkit import plots, profiles, tables, xai

plots.style()
cfg = profiles.notebook_settings("04_xai", globals())
cfg

# %% [markdown]
# ## Compute attributions, checks and associations

# %%
res = xai.run(cfg)
res.notes_text()

# %% [markdown]
# ## Where the model looks
# Look for bars above the dashed line (the model prefers the region) with CIs that do not cross
# it: the simulator planted vascular damage in the walls, plaques and perivascular tissue, so
# those should be above 1 and the lumen and background below.

# %%
fig = plots.enrichment_plot(res)

# %%
tables.readable(res.enrichment)

# %% [markdown]
# ### The reference input decides the answer for dark regions
# Integrated Gradients integrates from a reference input and Occlusion pastes it over the
# occluded window. Here that reference is an anechoic (black) frame: no echo at all, the black
# image of the original IG paper. Blood in the lumen is nearly anechoic, so it gets almost no
# attribution by construction; Grad-CAM has no reference and is the check on that. With the
# clips' mean grey as the reference, dark pixels differ most from it and collect attribution
# because they are dark. Look at which regions keep their ranking under both references: those
# are the conclusions that do not hang on this choice.

# %%
fig = plots.baseline_sensitivity_plot(res)

# %% [markdown]
# Systole vs diastole: look for whether the wall regions matter more when the artery is most
# distended (distension falls as arteries stiffen).

# %%
fig = plots.enrichment_plot(res, "systole")

# %% [markdown]
# ## Attribution movies: low, median and high VD
# Look at whether the bright attribution follows the vessel walls as they move with each beat.

# %%
plots.attribution_movies(res)

# %% [markdown]
# ## Do the explanations depend on the model? (cascading randomisation)
# Look for similarity that collapses (below the dotted 0.3 line) as more layers are randomised:
# an explanation that stays the same for a random model explains the input, not the model.
# Adebayo et al. rank-correlate signed maps and absolute maps; both are shown. Integrated
# Gradients multiplies by the input, so its absolute map keeps the image's structure (bright
# walls) even for a random network: the signed map is the one that tells whether it depends on
# the weights, and the absolute one is why IG maps should not be read without this check.

# %%
fig = plots.sanity_plot(res)

# %%
tables.readable(res.sanity)

# %% [markdown]
# ## Are they faithful? (deletion)
# Lower area under the deletion curve than the random order means the attributed pixels are the
# ones the prediction needs. Deleted pixels are set to the same reference input as above. Look at
# the paired row: the two orders on the same clips, so a CI entirely below 0 says the attribution
# order beats random beyond noise, and a CI that includes 0 is inconclusive (the findings below
# say which).

# %%
tables.readable(res.deletion_summary())

# %% [markdown]
# ## Grad-CAM of the plaque U-Nets (02)
# Look at whether the heat sits on the annotated plaque (yellow) in the top rows or spreads along
# the wall and the image, and where each model looks on plaque-free images (where false alarms
# come from). The table below says it in numbers: heat is concentrated on the plaque only where
# its share of the map inside the plaque exceeds the plaque's share of the image.

# %%
fig = plots.unet_gradcam(res)

# %%
res.unet_cam_summary()

# %% [markdown]
# ## VD, risk factors and the carotid markers: adjusted regression next to SHAP
# Look for the same predictors at the top of both rankings; on the simulator the planted drivers of
# vascular damage are age, blood pressure, diabetes, smoking, cholesterol and sex. Where 02 measured
# every subject, the plaque area (mean per side) and far-wall IMT from the same scan enter beside
# them: a positive β after adjustment says VD carries the structural damage the B-mode image
# shows; a β near zero says VD sees something else. On the simulator both plaques and IMT grow
# with the latent damage, so both are expected to be positive.

# %%
fig = plots.association_plot(res)

# %%
tables.readable(res.associations)

# %%
tables.readable(res.associations[res.associations.term.isin(["plaque_area_mm2", "imt_mm"])])

# %% [markdown]
# SHAP beeswarm: each dot is a person; look at whether high values of a predictor (red) push VD
# up (right) or down.

# %%
fig = plots.shap_beeswarm(res)

# %% [markdown]
# ## What we found
# Written from this run's tables (every number below is looked up in one of them):

# %%
res.findings()

# %% [markdown]
# How to read it: enrichment says which anatomical regions carry the model's evidence; the
# randomisation test, whether that evidence comes from what the model learned; the deletion test,
# whether it is faithful; the association table, which risk factors VD reflects.
#
# ## Next
# - `05_survival` asks whether VD predicts MI, cardiac death and death beyond SCORE2.
