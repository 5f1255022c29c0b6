"""Parameter values are checked against the types the notebook declares, whatever their source."""

import base64
import os
from pathlib import Path

import nbformat
import pytest

from utils import parameters, run_notebook

KNOWN = {
    "data_dir": parameters.Declared("str", ""),
    "suspected_artist": parameters.Declared("str", "Renoir"),
    "image_size": parameters.Declared("int", 64),
    "learning_rate": parameters.Declared("float", 0.001),
    "cosine_decay": parameters.Declared("bool", True),
}
PAYLOAD = '"; __import__("os").system("touch pwned"); "'


def test_the_notebook_declares_a_type_for_every_parameter():
    declared = parameters.declared(run_notebook.NOTEBOOK)
    assert {d.type_name for d in declared.values()} <= set(parameters.TYPES)
    assert declared["image_size"] == parameters.Declared("int", 64)
    assert declared["data_dir"] == parameters.Declared("str", "")
    assert declared["learning_rate"].type_name == "float"
    assert declared["cosine_decay"].type_name == "bool"


def test_the_parameters_cell_opens_with_a_basic_group_of_at_most_ten_lines():
    """A student meets a short group of the settings a first run changes; the advanced group
    follows in the same cell, marked, so that papermill still injects after it."""
    notebook = nbformat.read(run_notebook.NOTEBOOK, as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    basic, advanced = cell.source.split("\n\n# Advanced settings")
    assert basic.startswith("# Basic settings\n") and len(basic.splitlines()) <= 10
    assert {"data_dir", "image_size", "model", "num_epochs"} <= {
        line.split(":")[0] for line in basic.splitlines()[1:]
    }
    for line in (basic + advanced).splitlines()[1:]:
        assert not line or line.startswith("#") or "  # " in line, f"no comment: {line}"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("suspected_artist", "Re\"noir'\nline two \\ é", "Re\"noir'\nline two \\ é"),
        ("suspected_artist", PAYLOAD, PAYLOAD),
        ("image_size", 128, 128),
        ("learning_rate", 1, 1.0),
        ("learning_rate", 0.5, 0.5),
        ("cosine_decay", False, False),
        ("data_dir", None, ""),
    ],
)
def test_values_of_the_declared_type_pass(name, value, expected):
    checked = parameters.check(name, value, KNOWN[name])
    assert checked == expected
    assert type(checked) is type(expected)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("suspected_artist", PAYLOAD.encode()),
        ("suspected_artist", None),
        ("suspected_artist", 12),
        ("image_size", True),
        ("image_size", 64.0),
        ("image_size", "64"),
        ("image_size", None),
        ("learning_rate", False),
        ("learning_rate", "0.1"),
        ("cosine_decay", 1),
        ("cosine_decay", "yes"),
        ("data_dir", ["a", "b"]),
        ("data_dir", {"a": 1}),
        ("data_dir", {"a"}),
    ],
)
def test_anything_else_is_refused_with_name_type_and_value(name, value):
    with pytest.raises(parameters.ParameterError) as refused:
        parameters.check(name, value, KNOWN[name])
    message = str(refused.value)
    assert name in message and KNOWN[name].type_name in message
    assert type(value).__name__ in message


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("suspected_artist", "2024", "2024"),
        ("suspected_artist", "None", "None"),
        ("image_size", "96", 96),
        ("learning_rate", "1e-3", 0.001),
        ("cosine_decay", "False", False),
        ("cosine_decay", "true", True),
    ],
)
def test_command_line_text_is_read_as_the_declared_type(name, text, expected):
    assert parameters.parse_text(name, text, KNOWN[name]) == expected


@pytest.mark.parametrize(
    ("name", "text"),
    [("image_size", "abc"), ("image_size", "1e3"), ("image_size", "6.5"), ("cosine_decay", "1")],
)
def test_command_line_text_of_the_wrong_type_is_refused(name, text):
    with pytest.raises(parameters.ParameterError, match=name):
        parameters.parse_text(name, text, KNOWN[name])


@pytest.mark.parametrize(
    "content",
    [
        f"suspected_artist: !!binary {base64.b64encode(PAYLOAD.encode()).decode()}\n",
        "suspected_artist: !!set {a, b}\n",
        "suspected_artist: !!python/object/apply:os.system ['touch pwned']\n",
        "suspected_artist: !!python/name:os.system\n",
        "image_size: [64, 128]\n",
        "image_size: {size: 64}\n",
        "image_size: yes\n",
        "image_size: 64\nimage_size: [\n",
        "- just\n- a list\n",
        "unknown_name: 3\n",
        "7: 3\n",
    ],
)
def test_hostile_or_malformed_files_are_refused_in_one_line(tmp_path, content):
    file = tmp_path / "hostile.yaml"
    file.write_text(content)
    with pytest.raises(parameters.ParameterError) as refused:
        parameters.collect([str(file)], [], KNOWN)
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo", "folder", "large", "deep"])
def test_a_parameters_file_is_a_small_regular_file_read_once(tmp_path, kind):
    """#31: ``-f /dev/zero`` grew until the OOM killer came, and ``-f`` on a FIFO hung."""
    if kind == "/dev/zero":
        file = Path("/dev/zero")
    elif kind == "fifo":
        file = tmp_path / "pipe.yaml"
        os.mkfifo(file)
    elif kind == "folder":
        file = tmp_path
    elif kind == "large":
        file = tmp_path / "large.yaml"
        file.write_text("# padding\n" * 200_000 + "image_size: 64\n")
    else:
        file = tmp_path / "deep.yaml"
        file.write_text("image_size: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(parameters.ParameterError) as refused:
        parameters.collect([str(file)], [], KNOWN)
    message = str(refused.value)
    assert "\n" not in message and len(message) < 300
    expected = {
        "/dev/zero": "not a regular file",
        "fifo": "not a regular file",
        "folder": "not a regular file",
        "large": "more than a parameters file may hold",
        "deep": "nested too deeply",
    }[kind]
    assert expected in message


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(parameters.ParameterError, match=r"not found: .*nowhere\.yaml"):
        parameters.collect([str(tmp_path / "nowhere.yaml")], [], KNOWN)


def test_files_then_pairs_later_ones_win(tmp_path):
    first = tmp_path / "a.yaml"
    first.write_text("image_size: 128\nlearning_rate: 1\n")
    second = tmp_path / "b.yaml"
    second.write_text("learning_rate: 0.01\ndata_dir: null\n")
    collected = parameters.collect(
        [str(first), str(second)], [("image_size", "32"), ("suspected_artist", "7")], KNOWN
    )
    assert collected == {
        "image_size": 32,
        "learning_rate": 0.01,
        "data_dir": "",
        "suspected_artist": "7",
    }


@pytest.fixture(scope="module")
def defaults():
    return {name: d.default for name, d in parameters.declared(run_notebook.NOTEBOOK).items()}


def test_the_defaults_and_the_params_files_are_valid(defaults):
    parameters.validate(defaults)
    declared = parameters.declared(run_notebook.NOTEBOOK)
    for params_file in sorted((run_notebook.paths.PROJECT_ROOT / "params").glob("*.yaml")):
        parameters.validate(defaults | parameters.collect([str(params_file)], [], declared))


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"image_size": -5}, "image_size"),
        ({"image_size": 5000}, "image_size"),
        ({"num_epochs": 0}, "num_epochs"),
        ({"training_budget": -1}, "training_budget"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"learning_rate": float("inf")}, "learning_rate"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"crop_size": 80}, "crop_size"),
        ({"model": "resnet"}, "model must be one of"),
        ({"model": "mobilenetv2", "image_size": 16}, "at least 32 px"),
        ({"precision": "float8"}, "precision"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"distribute": "tpu"}, "distribute must be one of"),
        ({"data_mode": "stream"}, "data_mode must be one of"),
        ({"resize_mode": "stretch"}, "resize_mode"),
        ({"colour_jitter": 1.5}, "colour_jitter"),
        ({"label_smoothing": -0.1}, "label_smoothing"),
        ({"validation_split": 1.0}, "validation_split"),
        ({"holdout_fold": 6}, "holdout_fold"),
        ({"holdout_folds": 1}, "holdout_folds"),
        ({"seed": -1}, "seed"),
        ({"verbose": 3}, "verbose"),
        ({"filters": 0}, "filters"),
        ({"head_epochs": -1}, "head_epochs"),
        ({"unfreeze_blocks": 17}, "unfreeze_blocks"),
        ({"middle_block": 11}, "residual sum: 2, 4, 6, 7, 9, 10, 12, 13, 14"),
        ({"middle_block": -1}, "middle_block"),
        ({"fine_tune_learning_rate": 0.0}, "fine_tune_learning_rate"),
        ({"model": "mobilenetv2", "image_size": 16}, "at least 32 px"),
        ({"model": "efficientnet_lite0", "weights": "my_weights.h5"}, "installed package"),
        ({"fine_tune_epochs": -1}, "fine_tune_epochs"),
        ({"unfreeze_blocks": 0}, "fine_tune_epochs must be 0"),
        (
            {
                "unfreeze_blocks": 0,
                "fine_tune_epochs": 0,
                "image_size": 64,
                "crop_size": 48,
            },
            "crop_size and colour_jitter must be 0",
        ),
        (
            {"unfreeze_blocks": 0, "fine_tune_epochs": 0, "colour_jitter": 0.1},
            "features computed once",
        ),
        ({"run_name": "../escape"}, "run_name"),
        ({"temperature": 0.0}, "temperature must lie between"),
        ({"temperature": float("nan")}, "temperature must lie between"),
        ({"temperature": 100.0}, "temperature must lie between"),
        ({"num_epochs": 10**23}, "num_epochs must lie between 1 and 100,000"),
        ({"head_epochs": 10**6}, "head_epochs must lie between 1 and 100,000"),
        ({"fine_tune_epochs": 10**6}, "fine_tune_epochs must lie between 0 and 100,000"),
        ({"training_budget": 10**23}, "training_budget must be 0 (off) or a number"),
        ({"batch_size": 10**9}, "batch_size must lie between 1 and 65,536"),
    ],
)
def test_out_of_range_settings_are_named_in_one_line(defaults, changes, named):
    with pytest.raises(parameters.ParameterError, match="Invalid parameters") as refused:
        parameters.validate(defaults | changes)
    assert named in str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_settings_listed_in_utils_are_the_parameters_cells():
    """The chapter takes its settings by these names (``parameters.settings_in``), not from a
    dict that lists all of them again before any painting."""
    assert tuple(parameters.declared(run_notebook.NOTEBOOK)) == parameters.SETTINGS


def test_a_setting_missing_from_the_namespace_is_named():
    namespace = dict.fromkeys(parameters.SETTINGS, 1)
    assert list(parameters.settings_in(namespace | {"X": 2})) == list(parameters.SETTINGS)
    del namespace["seed"], namespace["model"]
    with pytest.raises(parameters.ParameterError, match="lacks model, seed"):
        parameters.settings_in(namespace)


def test_checked_settings_take_the_chapters_names_and_check_them(defaults):
    """The chapter's one line, ``parameters.checked_settings(globals())``."""
    assert parameters.checked_settings(defaults | {"X": 2}) == defaults
    with pytest.raises(parameters.ParameterError, match=r"Invalid parameters.*image_size"):
        parameters.checked_settings(defaults | {"image_size": 1})
