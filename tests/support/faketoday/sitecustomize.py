"""Put on PYTHONPATH by tests/e2e/test_demo_reproducible.py: every Python process of a
demo run (the demo, its services, the simulation) starts on the fake wall-clock date in
FAKE_TODAY_FOR_TESTS (time-machine; the clock ticks on from there)."""

import os

if os.environ.get("FAKE_TODAY_FOR_TESTS"):
    import time_machine

    time_machine.travel(os.environ["FAKE_TODAY_FOR_TESTS"], tick=True).start()
