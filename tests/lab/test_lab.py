"""The notebook in a real JupyterLab, clicked through in headless Chromium: ``make test-lab``.

A student opens the notebook in JupyterLab and picks Run > Run All Cells; this test does
the same through Playwright, with Debian's chromium (Playwright's own browser download is
not used). It checks that the project's kernel starts, that every cell runs without an
error, that every figure is drawn in the page, and that the widgets answer a change of
their controls. Screenshots are saved in the run's temporary out folder.

The committed notebook is never opened for editing: a copy without outputs goes into a
temporary root folder (the kernel still finds ``utils`` and the sample data, which resolve
from the project root), with autosave off in a settings folder of the test's own.
"""

import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from utils import paths

sync_api = pytest.importorskip("playwright.sync_api")


def chromium() -> str | None:
    """Debian's chromium: /usr/bin/chromium, else ``chromium`` on PATH."""
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else shutil.which("chromium")


pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(
        chromium() is None, reason="chromium is not installed: sudo apt-get install chromium"
    ),
]

NOTEBOOK = paths.PROJECT_ROOT / "notebooks" / "cnn_artists.ipynb"
KERNEL_DISPLAY_NAME = "Python 3 (cnn-artists)"
JUPYTER = Path(sys.executable).with_name("jupyter")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Run All trains a small CNN for a few minutes on 2 cores; allow several times that.
RUN_ALL_TIMEOUT_S = float(os.environ.get("CNN_ARTISTS_LAB_TIMEOUT", 20 * 60))
MIN_FIGURES = 12

# JupyterLab settings for the test's own settings folder: no autosave (nothing is written
# back), every cell attached to the page (so every figure can be counted), no news feed.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}

# JavaScript run in the page. JupyterLab exposes its app as window.jupyterapp when started
# with --LabApp.expose_app_in_browser; the notebook's model gives outputs by output_type.
NOTEBOOK_JSON = "() => window.jupyterapp.shell.currentWidget.context.model.toJSON()"
PROMPTS = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
    .map(e => e.textContent.trim())"""
RUN_FINISHED = f"""() => {{
    const prompts = ({PROMPTS})();
    if (!prompts.length || prompts.some(p => p.includes('*'))) return false;
    const cells = ({NOTEBOOK_JSON})().cells;
    const failed = cells.some(c => (c.outputs || []).some(o => o.output_type === 'error'));
    return failed || prompts.every(p => /^\\[\\d+\\]:$/.test(p));
}}"""
FIGURES = """() => [...document.querySelectorAll('.jp-RenderedImage img')]
    .map(img => img.complete && img.naturalWidth > 0)"""


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def copy_without_outputs(source: Path, target: Path) -> None:
    """The notebook as a student gets it after "Clear All Outputs": nothing to mistake
    for this run's output."""
    notebook = nbformat.read(source, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    notebook.metadata.pop("widgets", None)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)


def write_settings(folder: Path) -> None:
    for plugin, values in LAB_SETTINGS.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@dataclass
class Lab:
    url: str
    token: str
    out: Path
    log: Path

    def api(self, path: str, method: str = "GET") -> object:
        request = urllib.request.Request(
            f"{self.url}/api/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """``jupyter lab`` from the project's environment on a free loopback port, with a token,
    serving a temporary root that holds a copy of the notebook."""
    base = tmp_path_factory.mktemp("lab")
    root, out, settings = base / "root", base / "out", base / "settings"
    out.mkdir()
    copy_without_outputs(NOTEBOOK, root / "notebooks" / NOTEBOOK.name)
    write_settings(settings)
    port, token = free_port(), secrets.token_hex(16)
    env = os.environ | {
        "CNN_ARTISTS_OUT": str(out),
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
    }
    log = out / "jupyter-lab.log"
    command = [
        str(JUPYTER),
        "lab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    with open(log, "w") as log_file:
        server = subprocess.Popen(
            command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    started = Lab(f"http://127.0.0.1:{port}", token, out, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited with {server.returncode}:\n{log.read_text()}")
            try:
                started.api("status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer in 120 s:\n{log.read_text()}")
                time.sleep(1)
        yield started
    finally:
        try:
            for session in started.api("sessions"):
                started.api(f"sessions/{session['id']}", method="DELETE")
        except OSError:
            pass
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def page(lab: Lab) -> Iterator["sync_api.Page"]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def progress(message: str) -> None:
    print(f"[test-lab {time.strftime('%H:%M:%S')}] {message}", flush=True)


def widget_state(page, selector: str) -> tuple[str, str | None]:
    """What a widget shows: its text and the address of its image."""
    widget = page.locator(selector)
    return (
        widget.locator(".widget-html-content").inner_text(),
        widget.locator("img.widget-image").first.get_attribute("src"),
    )


def wait_for_change(page, selector: str, before: tuple[str, str | None], timeout_ms: int) -> None:
    """Wait until both the widget's text and its image differ from ``before``."""
    page.wait_for_function(
        """([selector, text, src]) => {
            const widget = document.querySelector(selector);
            const html = widget.querySelector('.widget-html-content');
            const img = widget.querySelector('img.widget-image');
            return html.innerText !== text && img.getAttribute('src') !== src
                && img.complete && img.naturalWidth > 0;
        }""",
        arg=[selector, *before],
        timeout=timeout_ms,
    )


def test_run_all_cells_in_jupyterlab(lab: Lab, page) -> None:
    committed = hashlib.sha256(NOTEBOOK.read_bytes()).hexdigest()
    shots = lab.out
    progress(f"JupyterLab at {lab.url}; screenshots and its log go to {shots}")

    # Open the notebook; its kernel must be the project's and must start.
    page.goto(f"{lab.url}/lab/tree/notebooks/{NOTEBOOK.name}?token={lab.token}")
    kernel_name = page.locator('[data-jp-item-name="kernelName"]')
    sync_api.expect(kernel_name).to_have_text(KERNEL_DISPLAY_NAME, timeout=120_000)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=120_000)
    [session] = lab.api("sessions")
    assert session["kernel"]["name"] == "cnn-artists"
    page.screenshot(path=shots / "lab-1-opened.png")

    # Run > Run All Cells, as a student would.
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_function(f"() => ({PROMPTS})().some(p => p.includes('*'))", timeout=60_000)
    progress(f"Run All Cells started; waiting up to {RUN_ALL_TIMEOUT_S:.0f} s")
    start = time.monotonic()
    page.wait_for_function(RUN_FINISHED, timeout=RUN_ALL_TIMEOUT_S * 1000, polling=2000)
    progress(f"Run All Cells finished in {time.monotonic() - start:.0f} s")
    page.screenshot(path=shots / "lab-2-run-all.png")

    # No cell failed: no error output in the notebook, no traceback on the page.
    notebook = page.evaluate(NOTEBOOK_JSON)
    code_cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    errors = [
        f"cell {i}: {o['ename']}: {o['evalue']}"
        for i, cell in enumerate(code_cells)
        for o in cell["outputs"]
        if o["output_type"] == "error"
    ]
    assert not errors, errors
    assert all(cell["execution_count"] for cell in code_cells)
    stderr = page.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
    ).all_inner_texts()
    assert not [text for text in stderr if "Traceback" in text], stderr

    # Every figure the kernel sent is drawn in the page.
    expected = sum(
        any(key.startswith("image/") for key in o.get("data", {}))
        for cell in code_cells
        for o in cell["outputs"]
    )
    drawn = page.evaluate(FIGURES)
    assert expected >= MIN_FIGURES
    assert len(drawn) == expected and all(drawn), (len(drawn), expected, drawn)
    progress(f"{expected} figures drawn, no error output")

    # The painting explorer redraws when another painting, then another artist, is picked.
    explorer = ".cnn-artists-explorer"
    page.wait_for_selector(f"{explorer} img.widget-image", timeout=60_000)
    page.locator(explorer).scroll_into_view_if_needed()
    page.locator(explorer).screenshot(path=shots / "lab-3-explorer.png")
    painting, artist = page.locator(f"{explorer} select").all()
    before = widget_state(page, explorer)
    closest_before = page.locator(f"{explorer} img.cnn-artists-closest").get_attribute("src")
    chosen = painting.evaluate("s => s.selectedIndex")
    painting.select_option(index=0 if chosen else 1)
    wait_for_change(page, explorer, before, 60_000)
    after = widget_state(page, explorer)
    assert re.match(rf"Painting {0 if chosen else 1}, by ", after[0]), after[0]
    page.wait_for_function(
        "([selector, src]) => document.querySelector(selector).getAttribute('src') !== src",
        arg=[f"{explorer} img.cnn-artists-closest", closest_before],
        timeout=60_000,
    )
    before = after
    chosen = artist.evaluate("s => s.selectedIndex")
    artist.select_option(index=0 if chosen else 1)
    page.wait_for_function(
        "([selector, src]) => document.querySelector(selector + ' img.widget-image')"
        ".getAttribute('src') !== src",
        arg=[explorer, before[1]],
        timeout=60_000,
    )
    page.locator(explorer).screenshot(path=shots / "lab-4-explorer-changed.png")

    # The mistakes stepper moves on with Next.
    stepper = ".cnn-artists-mistakes"
    before = widget_state(page, stepper)
    next_button = page.locator(stepper).get_by_role("button", name="Next")
    if before[0].startswith("Mistake 1 of 1:") or "No mistakes" in before[0]:
        assert next_button.is_disabled()
    else:
        next_button.click()
        wait_for_change(page, stepper, before, 60_000)
        assert widget_state(page, stepper)[0].startswith("Mistake 2 of")
    page.locator(stepper).screenshot(path=shots / "lab-5-mistakes.png")

    assert hashlib.sha256(NOTEBOOK.read_bytes()).hexdigest() == committed
    progress(f"widgets answered; screenshots in {shots}")
