from __future__ import annotations

import os
import subprocess
import sys

import pytest

from headstart.race import architecture
from headstart.settings import Settings
from headstart.training import models


@pytest.mark.parametrize(("width", "blocks", "classes"), [(4, 1, 5), (16, 1, 5), (16, 2, 3), (32, 3, 10), (128, 4, 2)])
def test_counts_without_torch_equal_the_built_models(width: int, blocks: int, classes: int) -> None:
    built = models.unit_params(models.build(width, blocks, classes))
    settings = Settings(width=width, blocks_per_stage=blocks)
    described = {u.name: u.params for u in architecture.describe_units(settings, "tiny", classes)}
    assert described == built


def test_units_are_described_input_to_output_with_labels(tiny: Settings) -> None:
    units = architecture.describe_units(tiny)
    assert [u.name for u in units] == [*architecture.UNITS, "head"]
    assert [u.label for u in units[:-1]] == list(architecture.UNIT_LABELS)


def test_the_web_server_never_imports_torch(tmp_path) -> None:
    """Torch belongs to the training worker: in the web process it would cost seconds and hundreds of MB."""
    code = (
        "import sys; from headstart.serving.hub import Hub; from headstart.serving.app import create_app; "
        "from headstart.serving.routers.status import public_config; "
        "from headstart.settings import get_settings; "
        "create_app(); public_config(get_settings(), Hub(get_settings())); "
        "sys.exit('torch' in sys.modules)"
    )
    env = {**os.environ, "HEADSTART_DATABASE": str(tmp_path / "races.sqlite3")}
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=60).returncode == 0
