"""The test suite cleans up after itself: each run of `make test` used to leave up to 160 MB
in /tmp (its runs' out/ folder, an empty one per worker, and a checkpoint folder), which adds
up on a machine that tests often. A folder the developer names in ``CNN_ARTISTS_OUT`` is kept."""

import os
import subprocess
import sys

from utils import paths

IN_TWO_WORKERS = ("-n", "2", "--dist", "loadfile")
SMALL = "tests/test_paths.py"


def run_pytest(tmp_path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """pytest on one small test file, in two xdist workers as make test runs it, with its
    temporary files under ``tmp_path``."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *IN_TWO_WORKERS, SMALL],
        cwd=paths.PROJECT_ROOT,
        env=env | {"TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_out_folder_the_suite_makes_is_removed_at_the_end(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "CNN_ARTISTS_OUT"}
    result = run_pytest(tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout
    assert sorted(tmp_path.glob("cnn-artists-test-out-*")) == []


def test_an_out_folder_the_developer_names_is_kept(tmp_path):
    mine = tmp_path / "my out"
    (mine / "earlier-run").mkdir(parents=True)
    (mine / "earlier-run" / "metrics.json").write_text("{}")
    result = run_pytest(tmp_path, os.environ | {"CNN_ARTISTS_OUT": str(mine)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (mine / "earlier-run" / "metrics.json").read_text() == "{}"
    others = {path.name for path in mine.iterdir()} - {"earlier-run"}
    assert others and all(name.startswith("worker-gw") for name in others), others
    assert sorted(tmp_path.glob("cnn-artists-test-out-*")) == []
