"""The rendered report site, opened in headless Chromium: links, images, console, code toggle."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser, pytest.mark.notebook]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


def _check_page(browser, path: Path):
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    failed_requests: list[str] = []
    page.on("requestfailed", lambda r: failed_requests.append(r.url))
    page.goto(path.as_uri(), wait_until="load")
    assert not errors, f"{path.name}: console errors {errors}"
    assert not failed_requests, f"{path.name}: failed requests {failed_requests}"
    for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
        url = urlparse(href)
        if url.scheme == "file":
            assert Path(unquote(url.path)).exists(), f"{path.name}: broken link {href}"
        else:
            assert url.scheme in ("", "about", "javascript") or href.startswith("#"), href
    broken = page.eval_on_selector_all(
        "img", "els => els.filter(e => !(e.complete && e.naturalWidth > 0)).map(e => e.src.slice(0, 80))"
    )
    assert not broken, f"{path.name}: images that do not load {broken}"
    assert page.locator(".ck-banner").first.is_visible(), f"{path.name}: no synthetic-data banner"
    return page


def test_index_and_every_page_render_cleanly(smoke_run, browser):
    reports = smoke_run["reports_dir"]
    index = reports / "index.html"
    page = _check_page(browser, index)
    links = page.eval_on_selector_all("table.nb a[href]", "els => els.map(e => e.href)")
    pages = sorted((reports / "smoke").glob("*.html"))
    assert pages and len(links) == len(pages)
    for p in pages:
        _check_page(browser, p).close()
    page.close()


def test_code_is_hidden_until_one_click(smoke_run, browser):
    page = _check_page(browser, sorted((smoke_run["reports_dir"] / "smoke").glob("*.html"))[0])
    code = page.locator(".jp-CodeCell .jp-Cell-inputWrapper").first
    assert not code.is_visible()
    page.click("#ck-code-toggle")
    assert code.is_visible()
    page.close()


def test_animations_play_offline_as_compact_images(smoke_run, browser):
    """Loops are animated WebP images (a few percent of the bytes of matplotlib's PNG-frame
    player): Chromium must decode them, at a visible size, with a description."""
    page = _check_page(browser, smoke_run["reports_dir"] / "smoke" / "03_vd_video.html")
    imgs = page.eval_on_selector_all(
        "figure.ck-movie img",
        "els => els.map(e => ({w: e.naturalWidth, shown: e.getBoundingClientRect().width, alt: e.alt,"
        " src: e.src.slice(0, 30)}))",
    )
    assert imgs, "no animation on the page"
    for im in imgs:
        assert im["src"].startswith("data:image/webp;base64,")
        assert im["w"] > 0 and im["shown"] > 50, im
        assert im["alt"] and "No description" not in im["alt"]
    page.close()


def test_the_paper_bundle_pages_render_and_link(smoke_run, browser):
    bundle = smoke_run["reports_dir"] / "smoke" / "bundle"
    for name in ("index.html", "tripod_ai.html"):
        _check_page(browser, bundle / name).close()


def test_index_and_pages_read_at_400_px(smoke_run, browser):
    """A phone-width window: the page itself never scrolls sideways (wide tables scroll inside
    their own box)."""
    page = browser.new_page(viewport={"width": 400, "height": 800})
    for path in [smoke_run["reports_dir"] / "index.html", smoke_run["reports_dir"] / "smoke" / "05_survival.html"]:
        page.goto(path.as_uri(), wait_until="load")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 402, f"{path.name}: {width} px wide at a 400 px viewport"
    page.close()
