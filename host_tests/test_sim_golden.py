"""The simulator's speed-ups change nothing the firmware sees: the same seeds give the same
events, trains, load-cell readings, screens and plant state.

Two checks over the fixed scenario set of host_tests/sim_golden.py (shipped configuration):
- against the golden files recorded before the speed-ups, while the firmware and board
  sources are those they were recorded on (their sha256 is in each file);
- always: the fast models against the exact ones (every PD_SCK edge through the pins, every
  STEP edge through the PIO emulator), in the same run of the tests.
"""

import pytest

import sim_golden
from sim import hw

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _fast_afterwards():
    yield
    hw.set_exact(False)


@pytest.mark.parametrize("name", sorted(sim_golden.SCENARIOS))
def test_the_event_stream_is_the_golden_one(name):
    golden = sim_golden.load(name)
    if golden.pop("firmware_sha256") != sim_golden.firmware_digest():
        pytest.skip("the firmware changed since the golden files were recorded; "
                    "the exact-against-fast test below still holds it")
    record = sim_golden.run(name)
    assert record["load_cell_reads"] > 1000  # the line test and the monitors read the cell
    for key in sorted(golden):
        assert record[key] == golden[key], key


@pytest.mark.parametrize("name", sorted(sim_golden.SCENARIOS))
def test_fast_models_give_what_the_exact_ones_give(name):
    hw.set_exact(True)
    exact = sim_golden.run(name)
    hw.set_exact(False)
    fast = sim_golden.run(name)
    assert exact["load_cell_reads"] > 1000 and len(exact["deliveries"]) > 100
    for key in sorted(exact):
        assert fast[key] == exact[key], key
