"""The benchmarks' helpers: the command a row prints, and the cache formats they compare."""

import importlib.util

import numpy as np
import pytest

from utils import paths


def load_benchmark(name: str):
    """The module ``benchmarks/<name>.py``."""
    spec = importlib.util.spec_from_file_location(
        name, paths.PROJECT_ROOT / "benchmarks" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def notebook_runs():
    return load_benchmark("notebook_runs")


@pytest.fixture(scope="module")
def cache_formats():
    return load_benchmark("cache_formats")


def test_a_row_prints_the_make_run_command_that_reproduces_it(notebook_runs):
    command = notebook_runs.make_command(
        ["params/kaggle.yaml"], {"data_dir": "../shared/data/my paintings", "seed": 1}
    )
    assert command == (
        "make run PARAMS=\"-f params/kaggle.yaml -p data_dir '../shared/data/my paintings' "
        '-p seed 1"'
    )
    assert notebook_runs.make_command([], {}) == "make run"


@pytest.mark.parametrize("cache_format", ["npy", "tfrecord", "snapshot"])
def test_each_cache_format_serves_every_image_once_an_epoch(cache_formats, cache_format, tmp_path):
    _, epochs = getattr(cache_formats, f"{cache_format}_epochs")(300, 4, tmp_path)
    stored = sorted(
        (image.tobytes(), int(label))
        for images, labels in cache_formats.chunks(300, 4)
        for image, label in zip(images, labels, strict=True)
    )
    for epoch in epochs:
        served = [
            (image.tobytes(), int(label))
            for images, one_hot in epoch
            for image, label in zip(np.asarray(images), np.argmax(one_hot, axis=1), strict=True)
        ]
        assert sorted(served) == stored


def test_the_checksum_benchmark_times_building_and_opening_an_entry(tmp_path):
    row = load_benchmark("cache_checksum").measure(paintings=30, size=8, work=tmp_path)
    assert row["entry_bytes"] > 30 * 8 * 8 * 3 and set(row["build_seconds"]) == {
        "with_checksums",
        "without_checksums",
    }
    assert set(row["open_seconds"]) == {
        "checked_cold",
        "checked_warm",
        "unchecked_cold",
        "unchecked_warm",
    }
    assert sorted(p.name for p in (tmp_path / "8px" / "with").iterdir()) == [
        "X.npy",
        "checksums.json",
        "kept.npy",
    ]


def test_two_benchmarks_started_in_the_same_second_get_folders_of_their_own(
    notebook_runs, tmp_path, monkeypatch
):
    monkeypatch.setenv("CNN_ARTISTS_OUT", str(tmp_path))
    monkeypatch.setattr(notebook_runs.time, "strftime", lambda _: "20261205-061101")
    first, second = (notebook_runs.benchmark_out_dir("accuracy") for _ in range(2))
    assert first.name == "accuracy-20261205-061101" and second.name == first.name + "-2"
    assert first.is_dir() and second.is_dir()
