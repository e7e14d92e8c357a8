from __future__ import annotations

import pytest

from carotidkit import profiles


def test_profile_values_then_overrides():
    smoke = profiles.settings("02_unet_ensemble", "smoke")
    work = profiles.settings("02_unet_ensemble", "workshop")
    assert smoke.epochs < work.epochs
    assert profiles.settings("02_unet_ensemble", "smoke", epochs=5).epochs == 5
    # None means "the profile's value"
    assert profiles.settings("02_unet_ensemble", "smoke", epochs=None).epochs == smoke.epochs


def test_every_profile_overrides_only_known_knobs():
    for prof, per_nb in profiles.PROFILES.items():
        for nb, vals in per_nb.items():
            assert set(vals) <= set(profiles.knobs(nb)), (prof, nb)


def test_unknown_profile_and_parameter_are_clear_errors():
    with pytest.raises(ValueError, match="unknown profile 'tiny'"):
        profiles.settings("00_data", "tiny")
    with pytest.raises(KeyError, match="unknown parameter"):
        profiles.settings("00_data", "smoke", n_subjectz=3)


def test_run_dirs_are_separate_per_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("CAROTIDKIT_RUNS", str(tmp_path))
    a = profiles.settings("00_data", "smoke").run_dir
    b = profiles.settings("00_data", "workshop").run_dir
    assert a != b and a.endswith("smoke") and b.endswith("workshop")


def test_settings_table_prints():
    df = profiles.settings("01_cleaning", "smoke").to_frame()
    assert {"parameter", "value"} <= set(df.columns) and "model_size_px" in set(df.parameter)
