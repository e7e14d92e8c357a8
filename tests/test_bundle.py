"""The paper bundle, findings written from the tables, page weight and the terminal's output."""

from __future__ import annotations

import base64
import io as _io
import json
import re
import zipfile

import numpy as np
import pandas as pd
import pytest

from carotidkit import findings as fnd
from carotidkit import report

NOTEBOOKS = ("00_data", "01_cleaning", "02_unet_ensemble", "03_vd_video", "04_xai", "05_survival")
MAX_PAGE_BYTES = 2 * 1024 * 1024
#: numbers the findings' fixed wording uses (thresholds and names, not results): "40 years" (SCORE2's
#: age range), "fewer than 10" (events per variable), "p > 0.5", "notebooks 03–05", "03's VD",
#: "annotator 1", "a CI above 0"
FIXED_NUMBERS = {"40", "10", "0.5", "03", "05", "02", "1", "0"}


# ----------------------------------------------------------------------------- unit tests


def test_numbers_are_formatted_as_journals_print_them():
    assert fnd.fmt_p(0.0004) == "<0.001"
    assert fnd.fmt_p(0.0312) == "0.031"
    assert fnd.fmt_p(float("nan")) == "n/a"
    assert fnd.fmt_number(-0.0123, "+.3f") == "−0.012"  # a true minus sign
    assert fnd.fmt_number(1234, "d") == "1,234"


def test_findings_look_up_each_number_and_drop_sentences_they_cannot_fill():
    t = {
        "m": pd.DataFrame(
            {"metric": ["auc", "acc"], "estimate": [0.7461, 0.7], "ci_low": [0.72, np.nan], "ci_high": [0.77, np.nan]}
        )
    }
    f = fnd.Findings(t)
    f.say(f"AUROC {f.ci('m', metric='auc')}.")
    f.say(f"accuracy {f.ci('m', metric='acc')}.")  # no CI: the estimate alone
    f.say(f"missing {f.num('m', metric='nope')}.")  # no such row: the sentence is left out
    assert f.markdown() == "AUROC 0.746 [0.720, 0.770]. accuracy 0.700."
    claims = f.claims_table()
    assert list(claims.text) == ["0.746", "0.720", "0.770", "0.700"]
    assert json.loads(claims["where"].iloc[0]) == {"metric": "auc"}


def test_hazard_ratio_intervals_use_a_dash_and_two_decimals():
    t = {"k": pd.DataFrame({"endpoint": ["mi"], "hr": [0.876], "lo": [0.62], "hi": [1.254]})}
    f = fnd.Findings(t)
    assert f.ci("k", "hr", "lo", "hi", ".2f", "()", endpoint="mi") == "0.88 (0.62–1.25)"


def test_poisson_rate_interval_matches_the_published_exact_limits():
    """Garwood's exact 95 % limits for 10 events are 4.795 and 18.39 (Ulm 1990, Am J Epidemiol
    131:373, Table 1); 05's rate table uses the same chi-square construction."""
    from carotidkit.survival.reporting import follow_up

    class R:  # the two attributes follow_up reads
        key_results = pd.DataFrame({"endpoint": ["x"]})
        analysis = pd.DataFrame({"x_years": [100.0] * 10, "x_event": [1] * 10, "vd_z": 0.0, "score2_risk": 0.1})

    fu = follow_up(R())
    assert fu.person_years.iloc[0] == 1000
    assert fu.rate_per_1000_py.iloc[0] == pytest.approx(10)
    assert fu.rate_ci_low.iloc[0] == pytest.approx(4.795, abs=0.002)
    assert fu.rate_ci_high.iloc[0] == pytest.approx(18.39, abs=0.01)


def test_reverse_km_median_follow_up_on_a_public_data_set():
    """Median follow-up by reverse Kaplan–Meier on lifelines' Rossi recidivism data (432 men,
    52 weeks): 114 arrests, and every one of the 318 censored men was followed to week 52, so the
    censoring distribution has its median at 52 weeks exactly."""
    from lifelines.datasets import load_rossi

    from carotidkit.survival.reporting import _reverse_km_median

    d = load_rossi()
    assert int(d.arrest.sum()) == 114
    assert _reverse_km_median(d.week.to_numpy(float), d.arrest.to_numpy(float)) == 52


def test_td_auc_interval_brackets_its_estimate():
    from carotidkit.survival.discrimination import time_dependent_auc_ci
    from carotidkit.synth.cohort import simulate_cohort

    cohort, truth = simulate_cohort(600, seed=3)
    d = cohort.merge(truth[["subject_id", "vd_true"]], on="subject_id")
    t = time_dependent_auc_ci(d, "death_years", "death_event", "age_years", [5.0, 10.0], n_boot=100, seed=1)
    assert (t.ci_low <= t.auc).all() and (t.auc <= t.ci_high).all()
    assert (t.ci_high - t.ci_low > 0.01).all()  # a real interval, not a point


def test_movies_are_compact_animated_webp():
    from PIL import Image

    from carotidkit import plots

    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 255, (20, 64, 64), dtype=np.uint8) for _ in range(2)]
    mv = plots.animate_clips(clips, titles=["a", "attribution"], redact=[True, False])
    img = Image.open(_io.BytesIO(mv.data))
    assert img.format == "WEBP" and img.n_frames == 20
    html = mv._repr_html_()
    assert "data:image/webp;base64," in html and "attribution: low" in html  # the heat panel's scale
    assert len(mv.data) < 20 * 2 * 64 * 64  # smaller than the raw frames, though pure noise


def test_figures_get_their_look_for_sentence_as_alt_text_and_long_tables_fold():
    import nbformat

    png = base64.b64encode(b"\x89PNG fake").decode()
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("## KM\nCurves by group. Look for curves that fan out in order."),
        nbformat.v4.new_code_cell("fig"),
        nbformat.v4.new_code_cell("t"),
    ]
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})]
    rows = "".join(f"<tr><td>{i}</td></tr>" for i in range(30))
    nb.cells[2].outputs = [
        nbformat.v4.new_output("execute_result", data={"text/html": f'<table class="dataframe">{rows}</table>'})
    ]
    assert report.describe_figures(nb) == 1
    out = nb.cells[1].outputs[0]["data"]["text/html"]
    assert 'alt="Look for curves that fan out in order."' in out and png in out
    assert nb.cells[2].outputs[0]["data"]["text/html"].startswith('<details class="ck-long">')


def test_terminal_shows_cell_starts_and_stage_lines_only(tmp_path):
    """What the runner echoes: one line per cell, and the lines stages report through
    ``report_line`` (sent to the runner's file, not to the page); cell outputs and kernel
    warnings never."""
    import logging

    from carotidkit.stages import PROGRESS_ENV, report_line

    seen: list[str] = []
    with report._Progress("05_survival", seen.append):
        log = logging.getLogger("papermill")
        log.info("Executing Cell 3---------------------------------------")
        log.info("<Figure size 936x468 with 8 Axes>")
        log.info("Index: []")
        log.warning("oneDNN custom operations are on.")
        report_line("fold 0 epoch 1: train loss 0.693")
    assert seen[0].startswith("    05_survival: cell 3 (")
    assert seen[1:] == ["    05_survival | fold 0 epoch 1: train loss 0.693"]
    assert PROGRESS_ENV not in __import__("os").environ


def test_tripod_checklist_lists_every_item_once():
    from carotidkit import tripod

    ids = [i[0] for i in tripod.ITEMS]
    assert len(ids) == len(set(ids))
    assert {str(n) for n in range(1, 28)} <= {re.match(r"\d+", i).group() for i in ids}
    assert {"author", "run", "run + author"} == {i[4] for i in tripod.ITEMS}


# ----------------------------------------------------------------------------- on the smoke run


def _page_findings(page: str) -> str:
    """The text of a page's "What we found" section (up to the next heading)."""
    from html import unescape

    m = re.search(r'id="What-we-found".*?</h2>(.*?)<h2', page, flags=re.S)
    assert m, "no 'What we found' section"
    body = re.sub(r'<div class="jp-(?:InputPrompt|OutputPrompt)[^"]*"[^>]*>.*?</div>', " ", m.group(1), flags=re.S)
    body = re.sub(r'<div class="jp-Cell-inputWrapper.*?</pre>', " ", body, flags=re.S)  # the (hidden) code
    text = re.sub(r"<[^>]+>", " ", body)
    return " ".join(unescape(text).split())


def _numbers(text: str) -> list[str]:
    """Numbers as printed in prose, leaving out those inside names (SCORE2, Q4, 03's, efficientnetb0)."""
    text = re.sub(r"\b[A-Za-z][A-Za-z_]*\d+[A-Za-z0-9_]*\b", " ", text)
    return re.findall(r"(?<![\w.])[−+<-]?\d[\d,]*(?:\.\d+)?%?", text)


def check_findings_against_tables(run_dir, reports_dir, profile: str) -> int:
    """Every claimed number equals its table cell (re-read from the saved CSV) and is on the page;
    every number on the page's findings is a claim or fixed wording. Returns claims checked."""
    checked = 0
    for nb in NOTEBOOKS:
        tdir = run_dir / "_report" / "tables" / nb
        claims = pd.read_csv(tdir / "findings_claims.csv", dtype=str, keep_default_na=False)
        text = _page_findings((reports_dir / profile / f"{nb}.html").read_text(encoding="utf-8"))
        squash = lambda x: re.sub(r"[\s`]+", "", x)  # noqa: E731  (markdown code marks and spacing)
        assert squash((tdir / "findings.md").read_text(encoding="utf-8")) in squash(text), f"{nb}: findings.md"
        for c in claims.itertuples():
            t = pd.read_csv(tdir / f"{c.table}.csv", dtype=str, keep_default_na=False)
            sel = pd.Series(True, index=t.index)
            for k, v in json.loads(c.where).items():
                sel &= t[k] == str(v)
            assert sel.sum() == 1, f"{nb}: claim {c.table}/{c.column} {c.where} matches {sel.sum()} rows"
            value = float(t.loc[sel, c.column].iloc[0])
            assert fnd.fmt_number(value, c.fmt) == c.text, f"{nb}: {c.table}/{c.column} {c.where}"
            assert c.text in text, f"{nb}: {c.text} not on the page"
            checked += 1
        stray = [n for n in _numbers(text) if n not in set(claims.text) and n.lstrip("−+") not in FIXED_NUMBERS]
        assert not stray, f"{nb}: numbers on the page not taken from a table: {stray}"
    return checked


@pytest.mark.notebook
def test_every_number_in_what_we_found_comes_from_a_table(smoke_run):
    assert smoke_run["error"] is None, smoke_run["error"]
    assert check_findings_against_tables(smoke_run["run_dir"], smoke_run["reports_dir"], "smoke") > 20


@pytest.mark.notebook
def test_the_bundle_holds_tables_figures_and_the_checklist(smoke_run):
    assert smoke_run["error"] is None, smoke_run["error"]
    bundle = smoke_run["reports_dir"] / "smoke" / "bundle"
    csvs = sorted(bundle.glob("tables/*/*.csv"))
    assert {p.parent.name for p in csvs} == set(NOTEBOOKS)
    for name in ("table1_by_vd", "table2", "added_value", "flow", "follow_up", "missing_data", "events_per_variable"):
        assert (bundle / "tables" / "05_survival" / f"{name}.csv").exists(), name
    # individual-level rows stay in the run folder
    assert not [p for p in csvs if "subject_id" in pd.read_csv(p, nrows=0).columns]
    sheets = pd.ExcelFile(bundle / "tables.xlsx").sheet_names
    assert len(sheets) == len(csvs) + 1 and all(len(s) <= 31 for s in sheets)
    for nb in ("00_data", "02_unet_ensemble", "05_survival"):
        stems = {p.stem for p in (bundle / "figures" / nb).glob("*.svg")}
        assert stems, nb
        for s in stems:
            for ext in ("pdf", "png"):
                assert (bundle / "figures" / nb / f"{s}.{ext}").stat().st_size > 0
    assert list((bundle / "figures" / "00_data").glob("*.webp"))  # the animation
    from PIL import Image

    png = next((bundle / "figures" / "05_survival").glob("*.png"))
    assert Image.open(png).info.get("dpi", (0,))[0] == pytest.approx(300, abs=1)
    check = pd.read_csv(bundle / "tripod_ai.csv", keep_default_na=False)
    assert len(check) == 52 and check.loc[check.item == "20a", "from_this_run"].iloc[0].startswith("cohort: 240")
    prov = json.loads((bundle / "provenance.json").read_text())
    assert prov["synthetic"] is True and set(prov["notebooks"]) == set(NOTEBOOKS)
    assert sorted(p.stem for p in (bundle / "notebooks").glob("*.ipynb")) == list(NOTEBOOKS)
    with zipfile.ZipFile(bundle.with_suffix(".zip")) as z:
        assert "bundle/tables.xlsx" in z.namelist() and "bundle/tripod_ai.html" in z.namelist()


@pytest.mark.notebook
def test_every_page_links_the_bundle_and_stays_under_2_mb(smoke_run):
    pages = sorted((smoke_run["reports_dir"] / "smoke").glob("*.html"))
    assert len(pages) == len(NOTEBOOKS)
    for p in pages:
        page = p.read_text(encoding="utf-8")
        assert 'href="bundle/index.html"' in page and 'href="bundle.zip"' in page, p.name
        assert p.stat().st_size < MAX_PAGE_BYTES, f"{p.name}: {p.stat().st_size / 1e6:.1f} MB"
        assert "No description has been provided" not in page, p.name
        assert 'name="viewport"' in page
        # no progress lines on the page: they went to the terminal
        assert not re.search(r"epoch \d+/\d+: loss|fold \d+ epoch \d+:", page), p.name
    index = (smoke_run["reports_dir"] / "index.html").read_text(encoding="utf-8")
    assert 'href="smoke/bundle/index.html"' in index


@pytest.mark.notebook
def test_the_terminal_shows_no_cell_output_or_tensorflow_lines(smoke_run):
    log = smoke_run["log"]
    assert any(": cell " in line for line in log)
    assert any("epoch" in line for line in log)  # the training lines still come through
    noise = [ln for ln in log if re.search(r"oneDNN|tensorflow|<Figure size|Index: \[\]|dtype: object|WARNING", ln)]
    assert not noise, noise[:5]
