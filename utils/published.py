"""The measured results on real paintings that the repository keeps, and how they read.

``benchmarks/accuracy.py`` records each configuration it measures in
``benchmarks/results/real_paintings.json``; the notebook and the README show that file,
so no figure is typed out by hand.
"""

import json
import os
import platform
import statistics
import subprocess
from pathlib import Path

from utils import paths, runs

REAL_PAINTINGS = paths.PROJECT_ROOT / "benchmarks" / "results" / "real_paintings.json"


def machine() -> str:
    """This computer in a few words: processor model, cores, and no GPU or the GPU count."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    from utils.backend import tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    return f"{model}, {os.cpu_count()} CPU cores, " + (f"{gpus} GPU(s)" if gpus else "no GPU")


def commit() -> str:
    """The project's git commit, ``-dirty`` if files differ from it; ``unknown`` without git."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=7"],
            cwd=paths.PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return described.stdout.strip()


def load(path: Path = REAL_PAINTINGS) -> dict:
    """The recorded results: ``{"data": ..., "rows": {name: row}}``; empty rows if none yet."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {"data": "", "rows": {}}


def record(name: str, row: dict, data: str, path: Path = REAL_PAINTINGS) -> None:
    """Store ``row`` as the result of configuration ``name``, replacing an older one."""
    results = load(path)
    results["data"] = data
    results["rows"][name] = row
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    runs.write_json(Path(path), results)


def spread(values: list[float]) -> str:
    """``mean ± standard deviation (min-max)`` of a metric over runs, or the one value."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return (
        f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f} "
        f"({min(values):.3f}-{max(values):.3f})"
    )


def markdown_table(results: dict) -> str:
    """The recorded results as a Markdown table, with the data, machine and command of each,
    and below it the note of any row that has one (how a figure should be read)."""
    if not results["rows"]:
        return "No results on real paintings are recorded yet (run `benchmarks/accuracy.py`)."
    lines = [
        f"Data: {results['data']}.",
        "",
        "| configuration | seeds | accuracy | macro-F1 | training time | machine "
        "| measured | command |",
        "|---|---|---:|---:|---:|---|---|---|",
    ]
    for row in results["rows"].values():
        lines.append(
            f"| {row['label']} | {', '.join(map(str, row['seeds']))} "
            f"| {spread(row['accuracy'])} | {spread(row['macro_f1'])} "
            f"| {row['training_minutes']:.1f} min "
            f"| {row['machine']}; {row['precision']} | {row['measured']}, commit {row['commit']} "
            f"| `{row['command']}` |"
        )
    notes = [
        f"- {row['label']}: {row['note']}" for row in results["rows"].values() if "note" in row
    ]
    return "\n".join(lines + (["", *notes] if notes else []))
