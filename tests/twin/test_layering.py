"""The twin's core imports no model: models and commands sit on top of it, never under it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CORE = ("twin.state", "twin.clock", "twin.store", "twin.snapshots", "twin.events", "twin.errors",
        "twin.component", "twin.coupling", "twin.domain", "twin.runkinds", "twin.pipeline")
ABOVE = ("physics", "agents", "scenarios", "viz", "hardware_bridge")


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_model(module):
    code = (f"import sys, json, {module}; "
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({ABOVE!r}))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [], f"{module} imports {out.stdout.strip()}"


def test_twin_help_lists_every_family_without_loading_the_engines():
    """`twin --help` finds the run kinds from their registration modules, which import no engine."""
    code = ("import sys, json\n"
            "from click.testing import CliRunner\n"
            "from twin.cli import main\n"
            "out = CliRunner().invoke(main, ['--help']).output\n"
            "print(json.dumps([out, sorted({'numba', 'xarray', 'physics.flood', 'physics._kernels.flood'}"
            " & set(sys.modules))]))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    text, heavy = json.loads(res.stdout)
    assert all(f"  {name} " in text for name in ("flood", "bridge", "city", "data", "info", "serve"))
    assert heavy == []
