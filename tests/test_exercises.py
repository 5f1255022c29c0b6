"""Every exercise of the chapter has its worked solution, under the same number and title."""

import re

import nbformat

from utils import paths

NOTEBOOKS = paths.PROJECT_ROOT / "notebooks"


def exercise_titles() -> dict[int, str]:
    """The chapter's exercises: number -> bold title, without its final full stop."""
    chapter = nbformat.read(NOTEBOOKS / "cnn_artists.ipynb", as_version=4)
    (cell,) = [c.source for c in chapter.cells if "\n## 16. Discussion" in c.source]
    cell = cell.split("\n## 16. Discussion", 1)[1]
    return {
        int(number): title.rstrip(".")
        for number, title in re.findall(r"^(\d+)\. \*\*(.+?)\*\*", cell, re.MULTILINE)
    }


def solution_titles() -> dict[int, str]:
    """The solutions notebook's headings: number -> title."""
    solutions = nbformat.read(NOTEBOOKS / "solutions.ipynb", as_version=4)
    return {
        int(number): title
        for cell in solutions.cells
        if cell.cell_type == "markdown"
        for number, title in re.findall(r"^## (\d+)\. (.+)$", cell.source, re.MULTILINE)
    }


def test_each_exercise_has_a_solution_with_its_number_and_title():
    exercises = exercise_titles()
    assert list(exercises) == list(range(1, 11))
    solutions = solution_titles()
    assert list(solutions) == list(exercises)
    for number, title in exercises.items():
        plain = title.replace("`", "")
        assert plain.lower() in solutions[number].replace("`", "").lower(), (number, title)


def test_at_least_half_the_exercises_have_the_student_write_keras():
    chapter = nbformat.read(NOTEBOOKS / "cnn_artists.ipynb", as_version=4)
    (cell,) = [c.source for c in chapter.cells if "\n## 16. Discussion" in c.source]
    cell = cell.split("\n## 16. Discussion", 1)[1]
    exercises = re.split(r"^\d+\. ", cell, flags=re.MULTILINE)[1:]
    keras_calls = re.compile(r"layers\.|keras\.(optimizers|callbacks|Sequential)|trainable_weights")
    assert sum(bool(keras_calls.search(text)) for text in exercises) >= len(exercises) / 2
