"""params/kaggle.yaml trains exactly the recipe that benchmarks/accuracy.py measures."""

import importlib.util

import yaml

from utils import paths


def load_accuracy_benchmark():
    spec = importlib.util.spec_from_file_location(
        "accuracy_benchmark", paths.PROJECT_ROOT / "benchmarks" / "accuracy.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kaggle_params_are_the_benchmarked_recipe():
    benchmark = load_accuracy_benchmark()
    recipe = benchmark.CONFIGS["recipe"]
    kaggle = yaml.safe_load((paths.PROJECT_ROOT / "params" / "kaggle.yaml").read_text())
    for name in (
        "model",
        "filters",
        "image_size",
        "crop_size",
        "optimizer",
        "learning_rate",
        "num_epochs",
        "label_smoothing",
        "colour_jitter",
        "precision",
    ):
        assert kaggle[name] == recipe[name], name
    assert kaggle["cosine_decay"] == recipe["cosine"]
    assert kaggle["batch_size"] == 32
    assert kaggle["seed"] == benchmark.SEED


def test_benchmark_overrides_are_read_as_yaml():
    parse = load_accuracy_benchmark().parse_overrides
    assert parse(["num_epochs=90", "precision=float32", "cosine=false"]) == {
        "num_epochs": 90,
        "precision": "float32",
        "cosine": False,
    }
