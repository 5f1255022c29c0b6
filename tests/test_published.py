"""Recorded results on real paintings: how they are stored and shown."""

from utils import published

ROW = {
    "label": "Recipe",
    "seeds": [0, 1],
    "accuracy": [0.6, 0.7],
    "macro_f1": [0.55, 0.65],
    "training_minutes": 12.34,
    "peak_memory_mib": 1400.0,
    "parameters": 1000,
    "precision": "float32",
    "machine": "Some CPU, 2 CPU cores, no GPU",
    "measured": "2026-11-29",
    "commit": "abc1234",
    "command": 'make run PARAMS="-f params/kaggle.yaml"',
    "images_seen": 38840,
    "chosen_on": "training fold 1",
}


def test_spread_gives_mean_deviation_and_range():
    assert published.spread([0.5]) == "0.500"
    assert published.spread([0.6, 0.7, 0.8]) == "0.700 ± 0.100 (0.600-0.800)"


def test_recorded_rows_replace_older_ones_and_show_as_a_table(tmp_path):
    path = tmp_path / "results.json"
    assert "No results" in published.markdown_table(published.load(path))
    published.record("recipe", ROW | {"label": "Old"}, "the subset", path)
    published.record("recipe", ROW, "the subset", path)
    results = published.load(path)
    assert list(results["rows"]) == ["recipe"]
    table = published.markdown_table(results).splitlines()
    assert table[0] == "Data: the subset."
    row = table[4]
    assert row.startswith("| Recipe | 0, 1 | 0.650 ± 0.071 (0.600-0.700) | 0.600 ± 0.071")
    assert "| not recorded | 38,840 |" in row
    published.record("recipe", ROW | {"expected_calibration_error": [0.04, 0.06]}, "x", path)
    row = published.markdown_table(published.load(path)).splitlines()[4]
    assert "| 0.050 ± 0.014 (0.040-0.060) | 38,840 |" in row
    assert "| 12.3 min |" in row and "| 38,840 |" in row and row.endswith("| training fold 1 |")
    assert "`" not in row, "commands go below the table"
    assert table[-1] == (
        '- Recipe: `make run PARAMS="-f params/kaggle.yaml"` (commit abc1234, 2026-11-29; '
        "Some CPU, 2 CPU cores, no GPU; float32)"
    )


def test_settings_chosen_on_the_scored_split_are_flagged():
    flagged = published.chosen_on(ROW | {"chosen_on": "this split", "chosen_on_scored_split": True})
    assert flagged == "**this split (flag: the scored split)**"
    assert published.chosen_on(ROW) == "training fold 1"
    assert published.chosen_on({}) == "not recorded"


def test_machine_and_commit_describe_this_checkout():
    assert "CPU cores" in published.machine()
    assert published.commit()


def test_a_row_note_is_printed_under_the_table(tmp_path):
    path = tmp_path / "results.json"
    published.record("recipe", ROW | {"note": "time shared with other jobs"}, "the subset", path)
    table = published.markdown_table(published.load(path)).splitlines()
    assert table[-1] == "- Recipe: time shared with other jobs"


def test_the_table_shows_the_committed_results_by_default():
    """The chapter's section 14: ``published.markdown_table()`` reads ``real_paintings.json``."""
    assert published.markdown_table() == published.markdown_table(published.load())
    assert published.markdown_table().startswith("Data: ")
