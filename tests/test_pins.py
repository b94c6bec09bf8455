"""Numbers pinned bit for bit from runs made before the architecture
restructure (tests/pins.py wrote tests/data/pins.json on main at fa86785):
the README's solve commands, a compare run, two stored sweeps and a
completion fit must give exactly the same numbers, not just close ones."""

import json

import pytest

from pins import PIN_FILE, collect


@pytest.fixture(scope="module")
def fresh():
    return collect()


@pytest.mark.parametrize("name", sorted(json.loads(PIN_FILE.read_text())))
def test_pinned_run_is_bit_identical(fresh, name):
    pinned = json.loads(PIN_FILE.read_text())[name]
    assert fresh[name] == pinned
