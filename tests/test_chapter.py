"""The chapter's shape: short, a painting early, and Keras cells a student can copy and run."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from utils import run_notebook

MAX_CELLS = 45
MAX_WORDS_BEFORE_THE_FIRST_PAINTING = 220  # the introduction's one paragraph and a heading


def chapter() -> nbformat.NotebookNode:
    return nbformat.read(run_notebook.NOTEBOOK, as_version=4)


def cell_with(marker: str) -> nbformat.NotebookNode:
    """The chapter's one code cell whose source contains ``marker``."""
    (cell,) = [c for c in chapter().cells if c.cell_type == "code" and marker in c.source]
    return cell


def test_the_chapter_has_at_most_45_cells():
    assert len(chapter().cells) <= MAX_CELLS


def test_before_the_first_painting_come_the_parameters_and_one_short_paragraph():
    cells = chapter().cells
    first_painting = next(n for n, c in enumerate(cells) if '"paintings_per_artist"' in c.source)
    before = cells[:first_painting]
    prose = [c.source for c in before if c.cell_type == "markdown"]
    words = sum(len(text.split()) for text in prose)
    assert words <= MAX_WORDS_BEFORE_THE_FIRST_PAINTING, words
    assert [c.cell_type for c in before].count("code") == 3  # imports, parameters, their check
    assert any("parameters" in c.metadata.get("tags", []) for c in before)


LOAD_THE_ARRAYS = """
data_path = sample_data.ensure_sample_data()
files = dataset.collect_files(data_path, validation_split, seed, holdout_fold, holdout_folds)
class_names = files.class_names
num_classes = len(class_names)
data = loading.load_files(files, image_size, resize_mode)
X_train, y_train = data.train.X, data.train.y
X_val, y_val = data.val.X, data.val.y
strategy = training.distribution_strategy(distribute)
run_dir = runs.create_run_dir("copied-cells")
"""

AFTER_FIT = """
assert len(history.history["loss"]) == num_epochs
assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)
plt.plot(history.history["val_accuracy"])
print(network.name, network.count_params())
"""


def test_a_student_can_copy_the_network_compile_and_fit_cells_after_one_that_loads_arrays(
    tmp_path: Path,
):
    """The issue's test of the division of labour: a notebook whose first cell loads the
    arrays (the chapter's imports and parameters, then the loader), then the chapter's
    network, compile, training-data and fit cells pasted as they are, runs; and a changed
    layer is the network that trains."""
    parameters = cell_with("# Basic settings").source
    parameters = parameters.replace("image_size: int = 64", "image_size: int = 32")
    parameters = parameters.replace("num_epochs: int = 15", "num_epochs: int = 1")
    network = cell_with('network = keras.Model(inputs, outputs, name="cnn")').source
    network = network.replace("layers.Dropout(0.3,", "layers.Dropout(0.5,")
    first = "\n\n".join([cell_with("from utils import (").source, parameters, LOAD_THE_ARRAYS])
    pasted = [
        network,
        cell_with("learner.compile(").source,
        cell_with("callbacks = [").source,
        cell_with("history = learner.fit(").source,
        AFTER_FIT + 'assert network.get_layer("dropout").rate == 0.5\n',
    ]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in [first, *pasted]]
    NotebookClient(
        notebook,
        kernel_name=run_notebook.KERNEL_NAME,
        timeout=600,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    printed = notebook.cells[-1].outputs[0]["text"]
    assert printed.startswith("cnn ")
