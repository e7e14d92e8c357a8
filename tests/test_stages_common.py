"""Every stage holds to one shape (after scikit-survival's ``test_common``): one settings class
declared once, ``run(settings, /, *, progress, **knobs)``, results derived from StageResult,
summary.json with the same keys, and every knob's default in one place."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json
from pathlib import Path

import pytest

from carotidkit import profiles, settings, stages
from carotidkit.io import CarotidkitError

ROOT = Path(__file__).resolve().parents[1]

#: notebook -> (stage module, result class name)
STAGES = {
    "00_data": ("carotidkit.data.stage", "DataResult"),
    "01_cleaning": ("carotidkit.clean.stage", "CleanResult"),
    "02_unet_ensemble": ("carotidkit.segment.stage", "UnetResult"),
    "03_vd_video": ("carotidkit.vd.stage", "VdResult"),
    "04_xai": ("carotidkit.xai.stage", "XaiResult"),
    "05_survival": ("carotidkit.survival.stage", "SurvivalResult"),
}
ALL = pytest.mark.parametrize("nb", list(STAGES))


def _module(nb):
    return importlib.import_module(STAGES[nb][0])


def test_every_notebook_has_a_settings_class_and_a_stage():
    assert set(settings.SETTINGS) == set(STAGES) == set(profiles.STAGES)


@ALL
def test_run_has_the_common_signature(nb):
    run = _module(nb).run
    cls = settings.SETTINGS[nb]
    assert run.Settings is cls
    params = list(inspect.signature(run).parameters.values())
    assert params[0].name == "settings" and params[0].kind is inspect.Parameter.POSITIONAL_ONLY
    assert params[1].name == "progress" and params[1].kind is inspect.Parameter.KEYWORD_ONLY
    assert [p.name for p in params[2:]] == list(cls._names())
    assert all(p.default is None for p in params[2:])  # no default outside the settings class
    impl = list(inspect.signature(run.implementation).parameters)
    assert impl == ["cfg", "lay", "progress"]


@ALL
def test_the_package_level_run_passes_a_settings_object_through(nb, monkeypatch):
    pkg = importlib.import_module(STAGES[nb][0].rsplit(".", 1)[0])
    seen = {}
    monkeypatch.setattr(_module(nb), "run", lambda s=None, /, **kw: seen.update(s=s, kw=kw))
    cfg = profiles.settings(nb, "smoke")
    pkg.run(cfg)
    assert seen == {"s": cfg, "kw": {}}


@ALL
def test_result_derives_from_the_common_base(nb):
    res_cls = getattr(_module(nb), STAGES[nb][1])
    assert issubclass(res_cls, stages.StageResult)
    own = {f.name for f in dataclasses.fields(res_cls)}
    assert {"settings", "synthetic", "summary"} <= own
    assert isinstance(inspect.getattr_static(res_cls, "headline"), property)


@ALL
def test_a_knob_the_stage_does_not_have_is_refused_before_anything_runs(nb, tmp_path):
    run = _module(nb).run
    with pytest.raises(KeyError, match="unknown parameter"):
        run(run_dir=tmp_path / "r", not_a_knob=1)
    other = next(n for n in settings.SETTINGS if n != nb)
    with pytest.raises(TypeError, match=f"was given {other}'s settings"):
        run(profiles.settings(other, "smoke", run_dir=tmp_path / "r"))
    assert not (tmp_path / "r").exists()  # refused before the lock or any folder


@ALL
def test_every_knob_is_declared_with_help_and_its_default_passes_its_own_check(nb):
    cls = settings.SETTINGS[nb]
    assert cls.knobs(), nb
    for name, k in cls.knobs().items():
        assert k.help.strip() and "\n" not in k.help, name
        assert k.kind in ("int", "float", "choice", "list", "text", "path", "path_or_map"), (name, k.kind)
        assert settings.check_value(nb, name, k.default, k) == k.default
    for prof in settings.PROFILE_NAMES:  # and every profile's values
        cls.for_profile(prof)


@ALL
def test_out_of_range_values_are_refused_when_the_settings_are_made(nb):
    cls = settings.SETTINGS[nb]
    for name, k in cls.knobs().items():
        bad = []
        if k.kind in ("int", "float") and k.lo is not None:
            bad.append(k.lo - 1)
        if k.kind in ("int", "float") and k.hi is not None:
            bad.append(k.hi + 1)
        if k.kind in ("choice", "list"):
            bad.append("no-such-option")
        for v in bad:
            with pytest.raises(ValueError) as e:
                cls.for_profile("smoke", **{name: v})
            assert f"{nb}: {name}" in str(e.value) and "\n" not in str(e.value)


def test_settings_are_frozen_and_read_as_a_mapping():
    cfg = profiles.settings("05_survival", "smoke")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.groups = 2
    assert dict(cfg)["groups"] == cfg.groups == cfg["groups"]
    assert cfg.replace(groups=3).groups == 3 and cfg.groups == 4
    with pytest.raises(ValueError, match="groups = 2 is below 3"):
        cfg.replace(groups=2)


def test_unbuildable_and_out_of_range_values_fail_before_any_notebook_runs(tmp_path):
    from carotidkit.report import run_report

    for params in ({"groups": 2}, {"width": 6}, {"epochs": 0}):
        with pytest.raises((ValueError, KeyError)):
            run_report("smoke", root=ROOT, run_dir=tmp_path / "r", reports_dir=tmp_path / "rep", overrides=params)
    assert not (tmp_path / "r" / "data").exists()


def test_no_second_table_of_defaults():
    """Each knob's default lives in carotidkit/settings.py only: no DEFAULTS/RULES tables, no
    stage signature, simulator or torchrun parser with its own defaults."""
    import carotidkit.synth.dataset as ds
    import carotidkit.vd.train as vt

    assert not hasattr(profiles, "DEFAULTS") and not hasattr(profiles, "RULES")
    assert not hasattr(vt, "DEFAULTS")
    gen = inspect.signature(ds.generate).parameters
    assert not set(gen) & set(settings.DataSettings.knobs())  # its knobs come through **knobs
    with pytest.raises(TypeError, match="unknown setting"):
        ds.generate(ROOT / "never", n_subjectz=3)
    # a literal workshop default of a knob in a stage module's function signature would be a second source
    workers = {  # the modules a stage hands its settings to
        "01_cleaning": ["carotidkit.clean.core"],
        "02_unet_ensemble": ["carotidkit.segment.train", "carotidkit.segment.members"],
    }
    for nb, mod in [(nb, m) for nb, (m, _) in STAGES.items()] + [(nb, m) for nb, ms in workers.items() for m in ms]:
        tree = ast.parse(Path(importlib.import_module(mod).__file__).read_text())
        knobs = set(settings.SETTINGS[nb].knobs())
        for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            pos = list(zip(fn.args.args[len(fn.args.args) - len(fn.args.defaults) :], fn.args.defaults))
            given = pos + [(a, d) for a, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults) if d is not None]
            # ``None`` means "not given" (the caller passes the resolved value), not a second default
            args = [a for a, d in given if not (isinstance(d, ast.Constant) and d.value is None)]
            assert not {a.arg for a in args} & knobs - {"seed", "n_boot"}, (mod, fn.name)


def test_the_torchrun_parser_offers_every_03_knob():
    import argparse

    p = argparse.ArgumentParser()
    settings.add_arguments(p, settings.VdSettings)
    opts = {a.dest for a in p._actions if a.dest != "help"}
    assert opts == set(settings.VdSettings.knobs())
    a = p.parse_args(["--width", "8", "--schedule", "constant"])
    assert settings.VdSettings.for_profile("smoke", **vars(a)).width == 8


def test_progress_is_one_type():
    lines = []
    stages.Progress.of(lines.append)("a")
    stages.Progress.of(False)("b")
    assert lines == ["a"] and not stages.Progress.of(None) and stages.Progress.of(True)
    with pytest.raises(TypeError):
        stages.Progress.of("loud")


def test_vd_combinations_are_refused_in_one_line():
    with pytest.raises(CarotidkitError, match="width = 6 cannot be built for r2plus1d"):
        settings.VdSettings.for_profile("smoke", width=6)
    # the checkpoint key reads exactly the training knobs
    cfg = settings.VdSettings.for_profile("smoke")
    assert set(cfg.training()) == set(cfg.knobs()) - {"n_boot", "n_jobs"}


@ALL
def test_stage_functions_are_short(nb):
    """No function of a stage module runs over ~60 lines (named steps instead)."""
    src = Path(_module(nb).__file__).read_text()
    for fn in (n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.FunctionDef)):
        n = fn.end_lineno - fn.lineno + 1
        first = fn.body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            n -= first.end_lineno - first.lineno + 1  # the docstring is not code
        assert n <= 60, f"{nb}: {fn.name} is {n} lines of code"


@pytest.mark.notebook
@ALL
def test_every_stage_writes_the_common_summary(smoke_run, nb):
    from carotidkit.layout import RunLayout

    lay = RunLayout(smoke_run["run_dir"])
    s = json.loads(lay.stage_summary(nb).read_text())
    assert s["headline"] and s["synthetic"] is True
    want = {k: v for k, v in dict(profiles.settings(nb, "smoke")).items() if k != "run_dir"}
    assert s["settings"] == json.loads(json.dumps(want))
    t = s["timings_s"]  # where the stage's time went (python -m carotidkit profile)
    assert t["total"] > 0 and len(t) >= 3  # at least one named phase, "other" and "total"
    assert abs(sum(v for k, v in t.items() if k != "total") - t["total"]) < 0.05


@pytest.mark.notebook
def test_timings_account_for_every_notebook(smoke_run):
    """``python -m carotidkit timings``: every executed notebook's parts, stage phases included,
    add up to its recorded execution and page-writing time."""
    from carotidkit.report import STATE_NAME
    from carotidkit.timing import by_part, markdown, run_times

    times = run_times(smoke_run["run_dir"])
    state = json.loads((smoke_run["run_dir"] / STATE_NAME).read_text())
    assert set(times.notebook) == set(profiles.STAGES)
    for nb, g in times.groupby("notebook"):
        want = state[nb]["duration_s"] + state[nb]["render_s"]
        assert abs(g.seconds.sum() - want) < 0.5 + 0.01 * want, nb
        assert {"kernel start", "page writing", "stage: other"} <= set(g.part), nb
    assert "stage: training the members" in set(times[times.notebook == "02_unet_ensemble"].part)
    assert "stage work" in by_part(times).index
    assert markdown(times).count("**total**") == len(profiles.STAGES)
