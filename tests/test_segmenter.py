"""The saved ensemble, as users call it on new images (uses the smoke run's trained models)."""

from __future__ import annotations

import numpy as np
import pytest

from carotidkit import data, io
from carotidkit.io import read_parquet
from carotidkit.layout import RunLayout

pytestmark = pytest.mark.notebook


@pytest.fixture(scope="module")
def segmenter(smoke_run):
    from carotidkit.segment.ensemble import PlaqueSegmenter

    assert smoke_run["error"] is None, smoke_run["error"]
    return PlaqueSegmenter.load(RunLayout(smoke_run["run_dir"]).unet.root)


def test_preprocessing_matches_01_cleaning(smoke_run, segmenter):
    run = smoke_run["run_dir"]
    db = data.load_plaque_db(data.data_paths(run)["plaque_db"], check=False).head(3)
    for r in db.itertuples():
        im, geom = segmenter.preprocess(r.image_path)
        ref = data.read_image(RunLayout(run).clean.images / f"{r.image_id}.png")
        assert np.array_equal(im, ref), r.image_id


def test_segment_raw_exports_returns_masks_probs_and_areas(smoke_run, segmenter):
    run = smoke_run["run_dir"]
    db = data.load_plaque_db(data.data_paths(run)["plaque_db"], check=False).head(2)
    size = io.read_json(RunLayout(run).unet.ensemble)["preprocessing"]["model_size_px"]
    res = segmenter.segment(list(db.image_path), pixel_spacing_mm=(0.07, 0.09))
    assert res.masks.shape == (2, size, size) and res.masks.dtype == bool
    assert res.probs.shape == (len(segmenter.models), 2, size, size)
    assert {"plaque_area_px", "plaque_area_mm2", "any_plaque", "mean_disagreement"} <= set(res.table.columns)
    assert (res.table.plaque_area_px == res.masks.sum((1, 2))).all()
    # arrays already at model size go straight in
    res2 = segmenter.segment(res.images, preprocessed=True)
    assert np.array_equal(res2.masks, res.masks)


def test_stage_outputs_are_documented_files(smoke_run):
    lay = RunLayout(smoke_run["run_dir"]).unet
    meta = io.read_json(lay.ensemble)
    for bb in meta["backbones"]:
        for f in ("best.keras", "last.keras", "log.csv", "train.json", "key.json"):
            assert (lay.backbone(bb) / f).exists(), (bb, f)
    assert all(p.exists() for p in lay.files().values()), lay.files()
    m = read_parquet(lay.metrics)
    assert {"metric", "estimate", "ci_low", "ci_high", "n_images", "model", "subset"} <= set(m.columns)
    assert {"all test", "test without duplicates", "validation"} == set(m.subset)
    v = read_parquet(lay.validation_predictions)
    assert set(v.model) == set(m.model) and v.image_id.nunique() == m[m.subset == "validation"].n_images.max()
    # simulated data carry a second reader, scored against annotator 1 like a model
    assert {"ensemble (majority)", "ensemble (mean)", "annotator 2", *meta["backbones"]} == set(m.model)
    vs = read_parquet(lay.versus_reader)
    assert set(vs.model) == {"ensemble (majority)", "ensemble (mean)", *meta["backbones"]}
    assert (vs.reference == "annotator 2").all() and (vs.n_images > 0).all()
    assert np.allclose(vs.difference, vs.dice_model - vs.dice_reference)
