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


def markdown_table(results: dict | None = None) -> str:
    """The recorded results (``load()`` when None) as a Markdown table: scores and expected
    calibration error over seeds, images seen, minutes of training, and where each row's
    settings were chosen (flagged when on the split it is scored on). Below the table, each
    row's command, commit and machine, then the note of any row that has one (how a figure
    should be read)."""
    results = load() if results is None else results
    if not results["rows"]:
        return "No results on real paintings are recorded yet (run `benchmarks/accuracy.py`)."
    rows = list(results["rows"].values())
    lines = [
        f"Data: {results['data']}.",
        "",
        "| configuration | seeds | accuracy | macro-F1 | calibration error | images seen "
        "| training | settings chosen on |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        images_seen = f"{row['images_seen']:,}" if "images_seen" in row else "not recorded"
        errors = row.get("expected_calibration_error")
        calibration = spread(errors) if errors else "not recorded"
        lines.append(
            f"| {row['label']} | {', '.join(map(str, row['seeds']))} "
            f"| {spread(row['accuracy'])} | {spread(row['macro_f1'])} | {calibration} "
            f"| {images_seen} "
            f"| {row['training_minutes']:.1f} min | {chosen_on(row)} |"
        )
    lines += ["", "Each row's command, commit and machine:", ""]
    lines += [
        f"- {row['label']}: `{row['command']}` (commit {row['commit']}, {row['measured']}; "
        f"{row['machine']}; {row['precision']})"
        for row in rows
    ]
    notes = [f"- {row['label']}: {row['note']}" for row in rows if "note" in row]
    return "\n".join(lines + (["", "Notes:", "", *notes] if notes else []))


def chosen_on(row: dict) -> str:
    """Where a row's settings were chosen, flagged when that was the split it is scored on:
    its score may then read high on paintings it has never seen."""
    where = row.get("chosen_on", "not recorded")
    return f"**{where} (flag: the scored split)**" if row.get("chosen_on_scored_split") else where
