"""``distribute: mirrored`` on two logical CPU devices trains the default notebook to the
metrics of one device at the same global batch, and saves a model ``make predict`` loads."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from utils import runs, sample_data

# Points of accuracy and macro-F1 the two runs may differ by (the bound).
TOLERANCE = 0.03


def run_notebook(settings: dict, env: dict) -> subprocess.CompletedProcess:
    arguments = [part for name, value in settings.items() for part in ("-p", name, str(value))]
    return subprocess.run(
        [sys.executable, "-m", "utils.run_notebook", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )


@pytest.mark.slow
def test_mirrored_on_two_devices_matches_one_device(tmp_path):
    out = tmp_path / "out"
    # Both runs see the processor as two devices; only the strategy differs.
    env = os.environ | {"CNN_ARTISTS_OUT": str(out), "CNN_ARTISTS_CPU_DEVICES": "2"}
    data = sample_data.ensure_sample_data()
    metrics = {}
    for distribute in ("none", "mirrored"):
        settings = {"data_dir": data, "distribute": distribute, "run_name": distribute}
        result = run_notebook(settings | {"verbose": 0}, env)
        assert result.returncode == 0, result.stderr[-3000:]
        run_dir = out / distribute
        assert runs.read_status(run_dir)["status"] == runs.FINISHED
        metrics[distribute] = json.loads((run_dir / "metrics.json").read_text())
    one, mirrored = metrics["none"], metrics["mirrored"]
    assert mirrored["parameters"]["distribute"] == "mirrored"
    assert mirrored["parameters"]["batch_size"] == one["parameters"]["batch_size"]
    assert "Devices:      2" in (out / "mirrored" / "notebook.ipynb").read_text()
    for name in ("accuracy", "macro_f1"):
        assert abs(mirrored[name] - one[name]) <= TOLERANCE, (name, one[name], mirrored[name])

    painting = next(Path(data, "validation", "validation", "Monet").iterdir())
    answered = subprocess.run(
        [
            sys.executable,
            "-m",
            "utils.predict",
            str(painting),
            "--model",
            str(out / "mirrored" / "model.keras"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert answered.returncode == 0, answered.stderr[-2000:]
    assert "(10 artists, 64 px, squash)" in answered.stdout
    assert len(re.findall(r"\d+\.\d%", answered.stdout)) == 3  # the top three painters
