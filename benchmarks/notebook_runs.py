"""Run the notebook as ``make run`` does and read what the run recorded.

Every training benchmark goes through here: ``python -m utils.run_notebook`` with files
from ``params/`` and ``-p`` settings, each run in a fresh kernel. Figures come from the
run's own ``metrics.json``, so a benchmark measures exactly what users run, and the
``make run`` command it prints reproduces a row.
"""

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from utils import paths


@dataclass(frozen=True)
class NotebookRun:
    """One executed notebook: the command that ran it, its folder and its metrics."""

    command: str
    run_dir: Path
    metrics: dict

    @property
    def training_seconds(self) -> float:
        """The ``fit`` time the run recorded, per-epoch validation included."""
        return float(self.metrics["seconds"]["training"])


def benchmark_out_dir(name: str) -> Path:
    """A fresh folder for one benchmark invocation's runs: ``out/benchmarks/<name>-<time>``,
    with ``-2``, ``-3``... when another invocation took that name in the same second."""
    stem = paths.out_root() / "benchmarks" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    for number in range(1, 1000):
        folder = stem if number == 1 else stem.with_name(f"{stem.name}-{number}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"{stem} and 998 numbered folders beside it already exist")


def make_command(params_files: list[str], settings: dict[str, object]) -> str:
    """The ``make run`` command a user would type for these files and settings."""
    arguments = [f"-f {file}" for file in params_files]
    arguments += [f"-p {name} {shlex.quote(str(value))}" for name, value in settings.items()]
    return f'make run PARAMS="{" ".join(arguments)}"' if arguments else "make run"


def run(
    params_files: list[str], settings: dict[str, object], run_name: str, out_dir: Path
) -> NotebookRun:
    """Execute the notebook through the runner into ``out_dir/run_name``; stop if it fails."""
    arguments = [part for file in params_files for part in ("-f", file)]
    for name, value in {**settings, "run_name": run_name}.items():
        arguments += ["-p", name, str(value)]
    result = subprocess.run(
        [sys.executable, "-m", "utils.run_notebook", *arguments],
        cwd=paths.PROJECT_ROOT,
        capture_output=True,
        text=True,
        env=os.environ | {"CNN_ARTISTS_OUT": str(out_dir)},
    )
    run_dir = out_dir / run_name
    if result.returncode != 0:
        sys.exit(f"The run {run_dir} failed:\n{result.stderr[-3000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return NotebookRun(make_command(params_files, settings), run_dir, metrics)
