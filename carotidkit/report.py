"""Execute the numbered notebooks with papermill and render the report site.

``run_report`` is what ``make report`` and ``python -m carotidkit report`` call. A notebook is
re-executed only when its fingerprint changes: the notebook file, its resolved parameters, the
carotidkit sources, or the outputs of the notebooks before it. Each profile has its own run
folder (``runs/<profile>``) and report folder (``reports/<profile>``); ``reports/index.html``
lists every profile's notebooks with status, duration, parameters, versions, commit and data
hashes. A failed notebook stops the run; its cell and error are printed and shown on the index.
"""

from __future__ import annotations

import contextlib
import html
import importlib.metadata as md
import json
import os
import platform
import re
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import io, profiles
from . import lock as run_lock
from .layout import RunLayout
from .settings import SETTINGS
from .stages import PROGRESS_ENV as STAGES_PROGRESS_ENV

STATE_NAME = "_report/state.json"
VERSIONED_PACKAGES = (
    "carotidkit",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "scikit-image",
    "opencv-python-headless",
    "tensorflow-cpu",
    "keras",
    "torch",
    "lifelines",
    "scikit-survival",
    "statsmodels",
    "captum",
    "shap",
    "monai",
    "pydicom",
    "pylibjpeg",
    "pylibjpeg-openjpeg",
    "pillow",
    "av",
    "papermill",
    "nbconvert",
)


@dataclass
class NotebookResult:
    notebook: str
    status: str  # ok | failed | up-to-date | not run
    duration_s: float | None = None  # executing (kernel start to last cell)
    render_s: float | None = None  # writing its HTML page
    executed_at: str | None = None
    fingerprint: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    html: str | None = None
    outputs: str | None = None  # digest of the stage folder right after the run


class NotebookFailed(RuntimeError):
    """Raised by run_report when a notebook fails (after the index has been written)."""


# ----------------------------------------------------------------------------- discovery


def discover(root: Path) -> list[Path]:
    nbs = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not nbs:
        raise FileNotFoundError(f"{root / 'notebooks'}: no numbered notebooks (NN_name.ipynb) found")
    return nbs


def parse_value(text: str) -> Any:
    """Parse a command-line override value (``2`` -> 2, ``[a, b]`` -> list, ``null`` -> None)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def select(nbs: list[Path], only: str | None) -> list[Path]:
    """The notebooks ``--only`` names: numbers (``3``, ``03``) or full names (``03_vd_video``),
    comma separated. Every entry must match exactly one notebook (``0`` is not a prefix of all)."""
    if only is None:
        return nbs
    wanted = [o.strip() for o in str(only).split(",") if o.strip()]
    if not wanted:
        raise ValueError(f"--only {only!r}: name at least one notebook")
    have = ", ".join(n.stem for n in nbs)
    picked = []
    for w in wanted:
        match = [nb for nb in nbs if nb.stem == w or (w.isdigit() and int(nb.stem.split("_")[0]) == int(w))]
        if not match:
            raise ValueError(f"--only {w}: no notebook matches; have {have}")
        picked += [m for m in match if m not in picked]
    return [nb for nb in nbs if nb in picked]


def resolve_parameters(
    nb: Path, profile: str, run_dir: Path, seed: int | None, overrides: dict[str, Any]
) -> dict[str, Any]:
    name = nb.stem
    if name in SETTINGS:
        mine = {k: v for k, v in overrides.items() if k in SETTINGS[name].knobs()}
        return dict(profiles.settings(name, profile, run_dir=run_dir, seed=seed, **mine))
    return {"profile": profile, "run_dir": str(run_dir), "seed": seed or 0}


def check_across_notebooks(params: dict[str, dict]) -> None:
    """Combinations of knobs of different notebooks that cannot work, refused before any runs."""
    p3, p4 = params.get("03_vd_video", {}), params.get("04_xai", {})
    if p3.get("architecture") == "vivit" and "grad_cam" in (p4.get("methods") or []):
        raise io.CarotidkitError(
            "04_xai: methods include grad_cam, which needs a convolutional video model, but 03's architecture is "
            "vivit: drop it (-p methods integrated_gradients,occlusion) or use architecture=r2plus1d"
        )


# ----------------------------------------------------------------------------- fingerprints


def package_digest() -> str:
    return io.tree_digest(Path(__file__).parent, content=True, exclude_prefix="__pycache__")


def path_params_digest(params: dict[str, Any]) -> dict[str, str]:
    """Cheap digest (names, sizes, mtimes) of every parameter that points at existing data."""
    out = {}
    for k, v in params.items():
        if k == "run_dir" or not isinstance(v, str) or not v:
            continue
        p = Path(v).expanduser()
        if p.exists():
            out[k] = io.tree_digest(p, content=False) if p.is_dir() else io.sha256_file(p)[:16]
    return out


def fingerprint(nb: Path, params: dict[str, Any], pkg: str, upstream: list[str]) -> str:
    return io.stable_hash(
        {
            "nb": io.sha256_file(nb),
            "params": params,
            "pkg": pkg,
            "upstream": upstream,
            "data": path_params_digest(params),
        }
    )


def stage_outputs_digest(run_dir: Path, nb_name: str) -> str:
    stage = profiles.STAGES.get(nb_name)
    return io.tree_digest(run_dir / stage, content=False) if stage else "none"


# ----------------------------------------------------------------------------- execution


_INTERRUPTED = threading.Event()


@contextlib.contextmanager
def _ctrl_c_noted():
    """Note a Ctrl-C (then raise KeyboardInterrupt as usual), so that the interrupted kernel's
    traceback is not echoed: the command line says in one line what happened."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        _INTERRUPTED.set()
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, handler)
    _INTERRUPTED.clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


class _Progress:
    """Terminal progress of one notebook: one line per cell as it starts (with elapsed time), and
    the lines the stages report (training epochs, steps) as they arrive. Nothing else reaches the
    terminal: cell outputs are results (they are on the page) and the kernel's own log is muted.

    The stages' lines travel through a file named in ``$CAROTIDKIT_PROGRESS_FILE``
    (:func:`carotidkit.stages.report_line`), tailed here, so they are not part of the page either.
    """

    def __init__(self, name: str, echo):
        import logging
        import tempfile

        self.name, self.echo, self.t0 = name, echo, time.time()
        self.logger = logging.getLogger("papermill")
        self.handler = logging.Handler()
        self.handler.emit = self._emit
        self.level = self.logger.level
        fd, self.path = tempfile.mkstemp(prefix=f"ck-{name}-", suffix=".progress")
        os.close(fd)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tail, daemon=True)
        self._env = os.environ.get(STAGES_PROGRESS_ENV)

    def _emit(self, record):
        msg = record.getMessage().strip()
        if not msg or _INTERRUPTED.is_set():  # after Ctrl-C: the kernel's shutdown noise is not news
            return
        m = re.match(r"Executing Cell (\d+)", msg)
        if m:
            self.echo(f"    {self.name}: cell {m.group(1)} ({time.time() - self.t0:.0f} s)")

    def _tail(self):
        with open(self.path, encoding="utf-8", errors="replace") as f:
            while True:
                stopping = self._stop.is_set()
                for line in f.read().splitlines():
                    if line.strip() and not _INTERRUPTED.is_set():
                        self.echo(f"    {self.name} | {line.strip()[:160]}")
                if stopping:
                    return
                self._stop.wait(0.2)

    def __enter__(self):
        import logging

        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.INFO)
        os.environ[STAGES_PROGRESS_ENV] = self.path  # the kernel inherits it
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)
        self._stop.set()
        self._thread.join(timeout=5)
        if self._env is None:
            os.environ.pop(STAGES_PROGRESS_ENV, None)
        else:
            os.environ[STAGES_PROGRESS_ENV] = self._env
        with contextlib.suppress(OSError):
            os.unlink(self.path)


_CLUTTER = re.compile(r"^(Epoch \d+/\d+|\s*\d+/\d+ .*\d+(ms|s|us)/step.*|.*\d+%\|.*\|.*)$")


def declutter(nb) -> int:
    """Drop progress-bar clutter from executed outputs before rendering: stderr streams (tqdm,
    warnings) and Keras/tqdm progress lines in stdout. Returns the number of outputs changed."""
    changed = 0
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        keep = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                if out.get("name") == "stderr":
                    changed += 1
                    continue
                text = out.get("text", "")
                lines = [ln for ln in text.replace("\r", "\n").split("\n") if not _CLUTTER.match(ln)]
                new = "\n".join(lines)
                if new != text:
                    changed += 1
                    if not new.strip():
                        continue
                    out["text"] = new
            keep.append(out)
        cell["outputs"] = keep
    return changed


_MD_STRIP = re.compile(r"[*_`#>]|\[([^\]]*)\]\([^)]*\)")
LONG_TABLE_ROWS = 15


def _look_for(markdown: str) -> str:
    """The sentence of a markdown cell that says what to look for (else its first sentence)."""
    body = "\n".join(ln for ln in markdown.splitlines() if not ln.lstrip().startswith("#"))
    text = " ".join(_MD_STRIP.sub(lambda m: m.group(1) or "", body or markdown).split())
    sentences = re.split(r"(?<=[.!?:])\s+(?=[A-Z])", text)
    for s in sentences:
        if re.search(r"\blook\b", s, re.I):
            return s.strip()
    return sentences[0].strip() if sentences else ""


def describe_figures(nb) -> int:
    """Give every figure the "look for" sentence of the text above it as its alt text (images
    become ``<img alt=...>`` HTML outputs), and fold tables longer than ``LONG_TABLE_ROWS`` rows
    into a ``<details>`` element. Returns the number of figures described."""
    n, last_md = 0, ""
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown":
            last_md = cell.get("source", "")
            continue
        for out in cell.get("outputs", []):
            data = out.get("data") or {}
            if "image/png" in data:
                alt = html.escape(_look_for(last_md) or "figure", quote=True)
                png = "".join(data["image/png"]).replace("\n", "")
                out["data"] = {"text/html": f'<img alt="{alt}" src="data:image/png;base64,{png}">'}
                n += 1
            elif "text/html" in data:
                page = "".join(data["text/html"])
                if 'class="ck-movie"' in page:
                    alt = html.escape(_look_for(last_md) or "animation", quote=True)
                    page = re.sub(r'(<img src="[^"]*" alt=")[^"]*"', lambda m, a=alt: f'{m.group(1)}{a}"', page)
                rows = page.count("<tr")
                if 'class="dataframe' in page and rows > LONG_TABLE_ROWS + 1 and "<details" not in page:
                    page = (
                        f'<details class="ck-long"><summary>Table of {rows - 1} rows: show</summary>'
                        f'<div class="ck-scroll">{page}</div></details>'
                    )
                data["text/html"] = page
    return n


def _quiet_kernel_manager(log_path: Path):
    """A kernel manager whose kernel writes its stderr (asyncio shutdown notices, C++ library
    banners) to ``log_path`` instead of the terminal; cell errors still arrive through the kernel
    protocol, so nothing a user needs is lost, and the log stays beside the executed notebook."""
    from jupyter_client import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "w", encoding="utf-8") as err:  # the kernel keeps its own copy of the handle
                kw["stderr"] = err
                return await super()._async_launch_kernel(kernel_cmd, **kw)

    return QuietKernelManager


def _execute(nb: Path, out_nb: Path, params: dict[str, Any], cwd: Path, echo=None) -> None:
    """Execute ``nb`` into ``out_nb`` (atomically); a failed run still leaves its partial output."""
    import contextlib
    import os
    import tempfile

    import papermill as pm

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # kernels inherit: no TF INFO noise
    out_nb.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_nb.stem}.", suffix=".ipynb", dir=out_nb.parent)
    os.close(fd)
    try:
        with _Progress(nb.stem, echo) if echo else contextlib.nullcontext():
            pm.execute_notebook(
                str(nb),
                tmp,
                parameters=params,
                kernel_name="python3",
                cwd=str(cwd),
                progress_bar=False,
                log_output=echo is not None,  # papermill logs cell starts only with it
                extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no kernel warnings on the terminal
                kernel_manager_class=_quiet_kernel_manager(out_nb.with_suffix(".kernel.log")),
                # every result is written (atomically) inside the cells and carotidkit has no exit
                # hooks: a graceful stop only waits for torch/TF teardown (3.4 s per notebook)
                shutdown_kernel="immediate",
            )
    finally:
        if os.path.getsize(tmp) > 0:
            os.chmod(tmp, io.file_mode())
            os.replace(tmp, out_nb)  # on failure: the notebook with the failing cell marked
        else:
            os.unlink(tmp)


def _describe_failure(exc: BaseException) -> str:
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    count = getattr(exc, "exec_count", None)
    source = getattr(exc, "source", "") or ""
    first = source.strip().splitlines()[:3]
    where = f"cell [{count}]" if count is not None else "a cell"
    src = (" | " + " / ".join(s.strip() for s in first)) if first else ""
    return f"{where} raised {ename}: {evalue}{src}"


def run_report(
    profile: str = "workshop",
    only: str | None = None,
    overrides: dict[str, Any] | None = None,
    force: bool = False,
    root: str | Path | None = None,
    run_dir: str | Path | None = None,
    reports_dir: str | Path | None = None,
    seed: int | None = None,
    echo=print,
) -> list[NotebookResult]:
    """Execute (what changed of) the notebook sequence and render the report site.

    Example:
        run_report("smoke", only="00")
    """
    root = profiles.repo_root(root)
    run_dir = RunLayout.for_profile(profile, run_dir, root).run_dir.resolve()
    reports_dir = Path(reports_dir).resolve() if reports_dir else root / "reports"
    overrides = dict(overrides or {})
    all_nbs = discover(root)
    chosen = select(all_nbs, only)
    known = set().union(*(SETTINGS[nb.stem].knobs() for nb in chosen if nb.stem in SETTINGS))
    stray = sorted(set(overrides) - known - {"seed"})
    if stray:
        raise KeyError(f"parameter(s) {', '.join(stray)} are not used by {', '.join(nb.stem for nb in chosen)}")
    if "seed" in overrides:
        seed = overrides.pop("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed = {seed!r} is not a non-negative whole number")
    # every notebook's parameters are checked before anything runs (a bad -p fails at once)
    all_params = {nb: resolve_parameters(nb, profile, run_dir, seed, overrides) for nb in all_nbs}
    check_across_notebooks({nb.stem: p for nb, p in all_params.items()})

    # one run per folder: the kernels started below run their stages under this lock
    with run_lock.hold(run_dir, note=echo) as token, _ctrl_c_noted():
        previous = os.environ.get(run_lock.ENV)
        os.environ[run_lock.ENV] = token
        try:
            return _run_locked(
                profile, only, overrides, force, root, run_dir, reports_dir, echo, all_nbs, chosen, all_params
            )
        finally:
            if previous is None:
                os.environ.pop(run_lock.ENV, None)
            else:
                os.environ[run_lock.ENV] = previous


def _run_locked(profile, only, overrides, force, root, run_dir, reports_dir, echo, all_nbs, chosen, all_params):
    """:func:`run_report` once the run folder's lock is held."""
    state_path = run_dir / STATE_NAME
    state = io.read_json(state_path) if state_path.exists() else {}
    pkg = package_digest()
    results: list[NotebookResult] = []
    failed = None
    for nb in all_nbs:
        name, params, prev = nb.stem, all_params[nb], state.get(nb.stem)
        if failed is not None:
            if nb in chosen or prev is None:
                results.append(NotebookResult(name, "not run", parameters=params, error=f"stopped: {failed} failed"))
            continue
        upstream = [stage_outputs_digest(run_dir, n.stem) for n in all_nbs if n.stem < name]
        fp = fingerprint(nb, params, pkg, upstream)
        html_path = reports_dir / profile / f"{name}.html"
        up_to_date = _up_to_date(prev, fp, run_dir, name, html_path)
        if nb not in chosen or (up_to_date and not force and not (only is not None and nb in chosen)):
            results.append(_skipped(nb, params, prev, nb in chosen, up_to_date, state, state_path))
            if up_to_date and nb in chosen:
                echo(f"[{profile}] {name}: up to date, skipped")
            continue
        res = _execute_one(nb, params, fp, profile, run_dir, html_path, echo)
        failed = name if res.status == "failed" else None
        state[name] = asdict(res)
        io.write_json(state_path, state)
        results.append(res)
    write_bundle(reports_dir, profile, run_dir)
    write_index(reports_dir, current=profile, run_dir=run_dir)
    if failed is not None:
        raise NotebookFailed(f"{failed} failed: {next(r.error for r in results if r.notebook == failed)}")
    return results


def write_bundle(reports_dir: Path, profile: str, run_dir: Path) -> Path:
    """The run's paper bundle (:mod:`carotidkit.bundle`) into ``reports/<profile>/bundle``."""
    from . import bundle

    state, manifest = _state_and_manifest(run_dir)
    provenance = {
        "profile": profile,
        "run_dir": str(run_dir),
        "commit": _git_commit(profiles.repo_root(reports_dir.parent)),
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "platform": platform.platform(),
        "synthetic": manifest.get("synthetic", True),
        "banner": synthetic_banner(run_dir),
        "data_hashes": manifest.get("data_hashes", {}),
        "notebooks": {
            k: {f: v.get(f) for f in ("status", "duration_s", "executed_at", "fingerprint", "parameters")}
            for k, v in state.items()
        },
        "versions": versions(),
    }
    return bundle.build(run_dir, Path(reports_dir) / profile / "bundle", profile, provenance)


def _up_to_date(prev: dict | None, fp: str, run_dir: Path, name: str, html_path: Path) -> bool:
    """Whether notebook ``name``'s last run is still current: same inputs, outputs intact, page there."""
    return bool(
        prev
        and prev.get("fingerprint") == fp
        and prev.get("status") == "ok"
        and prev.get("outputs") == stage_outputs_digest(run_dir, name)
        and RunLayout(run_dir).executed_notebook(name).exists()
        and html_path.exists()
    )


def _skipped(nb: Path, params, prev, chosen: bool, up_to_date: bool, state: dict, state_path: Path):
    """The result row of a notebook not executed now (unchosen, or chosen and up to date)."""
    if not prev:
        return NotebookResult(nb.stem, "not run", parameters=params)
    known = NotebookResult.__dataclass_fields__
    prev = {k: v for k, v in prev.items() if k in known}  # a state file from another version
    res = NotebookResult(**{**prev, "status": prev["status"] if not chosen else "up-to-date"})
    if not chosen and prev["status"] == "ok" and not up_to_date:
        # not re-run now, but what it was computed from has changed: say so on the index
        res.status = "out of date"
        res.error = "upstream outputs, parameters or code changed since this run"
        state[nb.stem] = asdict(res)
        io.write_json(state_path, state)
    return res


def _execute_one(nb: Path, params, fp: str, profile: str, run_dir: Path, html_path: Path, echo) -> NotebookResult:
    """Execute one notebook, render its page and return its result row (status ``failed`` on error)."""
    name = nb.stem
    executed = RunLayout(run_dir).executed_notebook(name)
    echo(f"[{profile}] {name}: executing ...")
    t0 = time.time()
    res = NotebookResult(name, "ok", parameters=params, fingerprint=fp, executed_at=time.strftime("%Y-%m-%d %H:%M:%S"))
    try:
        _execute(nb, executed, params, cwd=nb.parent, echo=echo)
    except Exception as exc:  # papermill's PapermillExecutionError, kernel death, ...
        res.status, res.error = "failed", _describe_failure(exc)
        echo(f"[{profile}] {name}: FAILED: {res.error}")
    res.duration_s = round(time.time() - t0, 1)
    if executed.exists():
        t1 = time.time()
        render_notebook(
            executed,
            html_path,
            title=f"{name} ({profile})",
            banner=synthetic_banner(run_dir),
            index_href="../index.html",
            run_dir=run_dir,
        )
        res.html = f"{profile}/{name}.html"
        res.render_s = round(time.time() - t1, 1)
    if res.status == "ok":
        res.outputs = stage_outputs_digest(run_dir, name)
        echo(f"[{profile}] {name}: ok in {res.duration_s:.1f} s -> {html_path}")
    return res


# ----------------------------------------------------------------------------- rendering


def synthetic_banner(run_dir: Path) -> str | None:
    """Banner text when the run's data are synthetic (or unknown: the safe default)."""
    manifest = RunLayout(run_dir).data.manifest
    if manifest.exists():
        m = io.read_json(manifest)
        if not m.get("synthetic", True):
            return None
        parts = [k for k, v in (m.get("sources") or {}).items() if v == "synthetic"]
        what = f" ({', '.join(parts)})" if parts and len(parts) < 3 else ""
        return (
            f"SYNTHETIC DATA{what}: generated by carotidkit.synth, not real patients. "
            "Numbers on this page describe the simulator, not a clinical population."
        )
    return "SYNTHETIC DATA (assumed: no data manifest yet): numbers on this page do not describe real patients."


_PAGE_CSS = """
<style id="carotidkit-style">
.ck-banner{position:sticky;top:0;z-index:1000;background:#b3261e;color:#fff;font:600 15px/1.4 system-ui,sans-serif;
  padding:8px 16px;text-align:center;letter-spacing:.02em}
.ck-nav{font:14px system-ui,sans-serif;padding:8px 16px;background:#f3f4f6;border-bottom:1px solid #ddd;
  display:flex;gap:16px;align-items:center}
.ck-nav button{font:inherit;padding:3px 10px;cursor:pointer}
body:not(.ck-show-code) .jp-CodeCell .jp-Cell-inputWrapper{display:none}
body:not(.ck-show-code) .jp-CodeCell .jp-OutputPrompt,body:not(.ck-show-code) .jp-InputPrompt{visibility:hidden}
/* offline stand-ins for the Font Awesome icons of matplotlib's animation controls */
.fa{font-style:normal;font-family:system-ui,sans-serif}
.fa-play:before{content:"▶"}.fa-pause:before{content:"⏸"}.fa-plus:before{content:"+"}
.fa-minus:before{content:"−"}.fa-step-forward:before{content:"▶|"}.fa-step-backward:before{content:"|◀"}
.fa-fast-forward:before{content:"▶▶"}.fa-fast-backward:before{content:"◀◀"}
.fa-flip-horizontal{display:inline-block;transform:scaleX(-1)}
.jp-OutputArea-output{overflow-x:auto;max-width:100%} .jp-OutputArea-output img{max-width:100%;height:auto}
.ck-scroll{max-height:480px;overflow:auto} details.ck-long>summary{cursor:pointer;color:#1a56db;font:14px system-ui,sans-serif}
@media (max-width:600px){.ck-nav{flex-wrap:wrap;gap:8px}.ck-banner{font-size:13px}}
</style>"""

_PAGE_JS = """
<script id="carotidkit-toggle">
function ckToggleCode(){document.body.classList.toggle('ck-show-code');
  var b=document.getElementById('ck-code-toggle');
  b.textContent=document.body.classList.contains('ck-show-code')?'Hide code':'Show code';}
</script>"""


def _strip_remote(page: str) -> str:
    """Drop remote scripts/styles (MathJax, require.js CDNs): the site must work offline."""
    page = re.sub(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", "", page)
    page = re.sub(r"<link[^>]*\bhref=\"https?://[^\"]*\"[^>]*>", "", page)
    # the Mermaid loader imports from a CDN (only when a diagram exists); carotidkit draws none
    page = re.sub(
        r"<script type=\"module\">(?:(?!</script>).)*?mermaid(?:(?!</script>).)*</script>", "", page, flags=re.S
    )
    # MathJax config blocks reference the (removed) MathJax global
    page = re.sub(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", "", page, flags=re.S)
    return page


def _decorate(page: str, banner: str | None, nav_html: str) -> str:
    page = _strip_remote(page)
    top = f'<div class="ck-banner" role="alert">{html.escape(banner)}</div>' if banner else ""
    if 'name="viewport"' not in page:
        page = page.replace("<head>", '<head>\n<meta name="viewport" content="width=device-width, initial-scale=1">', 1)
    page = page.replace("</head>", _PAGE_CSS + _PAGE_JS + "</head>", 1)
    page = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + top + nav_html, page, count=1)
    return page


def render_notebook(
    executed: Path, html_path: Path, title: str, banner: str | None, index_href: str = "index.html", run_dir=None
) -> Path:
    """Render an executed notebook to a self-contained HTML page (code hidden, one-click toggle),
    linking the report index, the run's paper bundle and (``run_dir``) the run folder."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    declutter(nb)
    describe_figures(nb)
    run_link = ""
    if run_dir is not None:
        rel = os.path.relpath(Path(run_dir), Path(html_path).parent)
        run_link = f'<a href="{html.escape(rel)}/" title="{html.escape(str(run_dir))}">run folder</a>'

    nb.metadata["title"] = title
    exporter = HTMLExporter(template_name="lab")
    exporter.embed_images = True
    body, _ = exporter.from_notebook_node(nb)
    nav = (
        f'<div class="ck-nav"><a href="{index_href}">&larr; Report index</a>'
        f"<strong>{html.escape(title)}</strong>"
        '<a href="bundle/index.html">Paper bundle (tables, figures)</a><a href="bundle.zip">bundle.zip</a>'
        f"{run_link}"
        '<button id="ck-code-toggle" onclick="ckToggleCode()">Show code</button></div>'
    )
    io.write_text(html_path, _decorate(body, banner, nav))
    return html_path


def _git_commit(root: Path) -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return (sha or "unknown") + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in VERSIONED_PACKAGES:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = "not installed"
    return out


def _state_and_manifest(run_dir: Path) -> tuple[dict, dict]:
    """The runner's state and the data manifest of a run (empty where not written yet)."""
    state_path, manifest_path = run_dir / STATE_NAME, RunLayout(run_dir).data.manifest
    state = io.read_json(state_path) if state_path.exists() else {}
    return state, (io.read_json(manifest_path) if manifest_path.exists() else {})


def _profile_section(reports_dir: Path, run_dir: Path, profile: str) -> str:
    state, manifest = _state_and_manifest(run_dir)
    rows = []
    for name, r in sorted(state.items()):
        link = (
            f'<a href="{html.escape(r["html"])}">{html.escape(name)}</a>'
            if r.get("html") and (reports_dir / r["html"]).exists()
            else html.escape(name)
        )
        params = html.escape(json.dumps(r.get("parameters", {}), indent=1, default=str))
        err = f'<div class="err">{html.escape(r["error"])}</div>' if r.get("error") else ""
        dur = f"{r['duration_s']:.1f} s" if r.get("duration_s") is not None else "–"
        found = html.escape(conclusion(run_dir, name)) if r.get("status") in ("ok", "up-to-date") else ""
        rows.append(
            f'<tr class="st-{html.escape(r["status"].replace(" ", "-"))}"><td>{link}</td>'
            f'<td>{html.escape(r["status"])}{err}</td><td class="found">{found}</td><td>{dur}</td>'
            f"<td>{html.escape(r.get('executed_at') or '–')}</td>"
            f"<td><details><summary>show</summary><pre>{params}</pre></details></td></tr>"
        )
    hashes = manifest.get("data_hashes", {})
    bundle_link = (
        f'Paper bundle: <a href="{profile}/bundle/index.html">tables, figures, TRIPOD+AI checklist</a> '
        f'(<a href="{profile}/bundle.zip">zip</a>).'
        if (reports_dir / profile / "bundle" / "index.html").exists()
        else ""
    )
    hash_rows = (
        "".join(
            f"<tr><td>{html.escape(k)}</td><td><code>{html.escape(str(v))}</code></td></tr>"
            for k, v in sorted(hashes.items())
        )
        or "<tr><td colspan=2>no data manifest yet</td></tr>"
    )
    return (
        f'<section id="profile-{profile}"><h2>Profile <code>{profile}</code></h2>'
        f"<p>Run folder: <code>{html.escape(str(run_dir))}</code>. {bundle_link}</p>"
        '<div class="ck-scroll-x"><table class="nb"><thead><tr><th>notebook</th><th>status</th><th>what we found</th><th>duration</th>'
        "<th>executed</th><th>parameters</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
        "<h3>Input data hashes</h3><div class='ck-scroll-x'><table>" + hash_rows + "</table></div></section>"
    )


def conclusion(run_dir: Path, name: str) -> str:
    """What a notebook found, in words with CIs: its findings paragraph (``findings.md``, written
    from its tables), else its stage's one-line headline."""
    path = RunLayout(run_dir).tables_dir(name) / "findings.md"
    try:
        return path.read_text(encoding="utf-8").strip().replace("`", "")
    except OSError:
        return headline(run_dir, name)


def headline(run_dir: Path, name: str) -> str:
    """One line of what a notebook found: the ``headline`` its stage wrote into its summary file."""
    try:
        return str(io.read_json(RunLayout(run_dir).stage_summary(name)).get("headline", ""))
    except (OSError, KeyError, ValueError):  # not run yet, or an older run without a headline
        return ""


def write_index(reports_dir: Path, current: str | None = None, run_dir: Path | None = None) -> Path:
    """(Re)write ``reports/index.html`` from the state of every run rendered into ``reports_dir``.

    ``reports_dir/_runs.json`` remembers which run folder each profile's pages came from.
    """
    reports_dir = Path(reports_dir)
    root = profiles.repo_root(reports_dir.parent)
    registry_path = reports_dir / "_runs.json"
    runs = io.read_json(registry_path) if registry_path.exists() else {}
    if current and run_dir:
        runs[current] = str(run_dir)
        io.write_json(registry_path, runs)
    runs = {p: Path(d) for p, d in runs.items() if (Path(d) / STATE_NAME).exists()}
    order = ([current] if current in runs else []) + [p for p in runs if p != current]
    sections = "".join(_profile_section(reports_dir, runs[p], p) for p in order)
    synthetic = any(synthetic_banner(runs[p]) for p in order) or not order
    banner = (
        "SYNTHETIC DATA: the runs listed here use carotidkit's simulator, not real patients." if synthetic else None
    )
    vers = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in versions().items())
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>carotidkit report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
.ck-scroll-x{{overflow-x:auto;max-width:100%}} td.found{{min-width:16em}}
body{{font:15px/1.5 system-ui,sans-serif;margin:0;color:#222}} main{{padding:8px 24px 40px}}
table{{border-collapse:collapse;margin:8px 0}} td,th{{border:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:top}}
tr.st-failed td{{background:#fde8e8}} tr.st-out-of-date td{{background:#fff7e0}} tr.st-ok td:nth-child(2),tr.st-up-to-date td:nth-child(2){{color:#176f2c}}
.err{{color:#b3261e;font-family:monospace;white-space:pre-wrap;max-width:60em}} pre{{margin:0;font-size:12px}}
</style></head><body>
{f'<div class="ck-banner" role="alert">{html.escape(banner)}</div>' if banner else ""}
{_PAGE_CSS}
<main><h1>carotidkit report</h1>
<p>Generated {time.strftime("%Y-%m-%d %H:%M:%S")} from commit <code>{html.escape(_git_commit(root))}</code>
on {html.escape(platform.platform())} with Python {platform.python_version()}.</p>
{sections or "<p>No notebook has been run yet: <code>make report</code>.</p>"}
<h2>Package versions</h2><table>{vers}</table>
</main></body></html>
"""
    return io.write_text(reports_dir / "index.html", page)
