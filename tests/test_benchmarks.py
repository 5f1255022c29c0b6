"""The benchmarks' shared helper: the command a row prints."""

import importlib.util

import pytest

from utils import paths


@pytest.fixture(scope="module")
def notebook_runs():
    spec = importlib.util.spec_from_file_location(
        "notebook_runs", paths.PROJECT_ROOT / "benchmarks" / "notebook_runs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_row_prints_the_make_run_command_that_reproduces_it(notebook_runs):
    command = notebook_runs.make_command(
        ["params/kaggle.yaml"], {"data_dir": "../shared/data/my paintings", "seed": 1}
    )
    assert command == (
        "make run PARAMS=\"-f params/kaggle.yaml -p data_dir '../shared/data/my paintings' "
        '-p seed 1"'
    )
