"""Shared pytest set-up: import paths, the hardware fakes, and the hypothesis profiles.

`pump` (firmware/pump) and `sim` (the simulator) are installed (pip install -e .);
pyproject.toml puts host_tests/ and the repository root on sys.path; the host tools
(scenario, pumpctl, ...) live in tools/, added here.
"""

import os
import sys

from hypothesis import HealthCheck, settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tools")
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

from sim import hw  # noqa: E402

hw.install()

# "ci": fewer examples and no per-example deadline, for shared runners whose speed
# varies; "dev": more examples on a workstation. HYPOTHESIS_PROFILE overrides both.
settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _default_profile():
    ci = os.environ.get("CI", "").strip().lower()
    return "ci" if ci in ("1", "true", "yes") else "dev"


settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or _default_profile())
