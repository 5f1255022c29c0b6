"""A pytest plugin for nbval passes: keep what each notebook cell showed this time.

nbval compares a cell's new outputs with the stored ones, then forgets them. The checks of
the cells it does not compare digit for digit need them. Load it with
``-p tests.nbval_record`` and name a file in ``CNN_ARTISTS_NBVAL_OUTPUTS``: each executed
code cell's text outputs are written there as JSON, keyed by nbval's cell number (code
cells only, counted from 0).
"""

import json
import os

import pytest

RECORD_TO = "CNN_ARTISTS_NBVAL_OUTPUTS"
_shown: dict[int, list[dict]] = {}


def _text_only(output: dict) -> dict:
    kept = {key: output[key] for key in ("output_type", "name", "text") if key in output}
    data = {key: value for key, value in output.get("data", {}).items() if key.startswith("text/")}
    return kept | ({"data": data} if data else {})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """After a cell ran, keep its outputs (nbval has them on the item, compared or not)."""
    yield
    outputs = getattr(item, "test_outputs", None)
    if call.when == "call" and outputs is not None:
        _shown[item.cell_num] = [_text_only(output) for output in outputs]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write every kept output to the file ``CNN_ARTISTS_NBVAL_OUTPUTS`` names."""
    target = os.environ.get(RECORD_TO)
    if target:
        with open(target, "w", encoding="utf-8") as handle:
            json.dump({str(number): outputs for number, outputs in _shown.items()}, handle)
