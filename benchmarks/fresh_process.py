"""Run one measurement of a benchmark script in a fresh Python process.

Each measurement gets its own interpreter, so peak memory and TensorFlow's state start
clean. The script runs as ``script --child ARGS`` and prints its result as one JSON line.
"""

import json
import os
import subprocess
import sys


def run_child(script: str, *args: str) -> dict:
    """Run ``script --child ARGS`` in a new interpreter; the JSON of its last output line."""
    output = subprocess.run(
        [sys.executable, script, "--child", *args],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
    ).stdout
    return json.loads(output.strip().splitlines()[-1])
