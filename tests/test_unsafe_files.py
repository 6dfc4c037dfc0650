"""Config and weights files cannot run code: a crafted file is refused with one line, and the
command it carries never runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
D2_CONFIG = REPO / "baselines/detectron2/configs/embedded/mask_rcnn_R_18_FPN.yaml"


def _evil_yaml(path: Path, marker: Path, base: Path) -> Path:
    path.write_text(f"_BASE_: {base}\n"
                    f"OUTPUT_DIR: !!python/object/apply:os.system ['touch {marker}']\n")
    return path


def test_train_net_refuses_a_yaml_config_with_a_python_tag(tmp_path):
    pytest.importorskip("detectron2")
    marker = tmp_path / "marker"
    config = _evil_yaml(tmp_path / "evil.yaml", marker, D2_CONFIG)
    result = subprocess.run(
        [sys.executable, str(REPO / "baselines/detectron2/train_net.py"),
         "--config-file", str(config), "OUTPUT_DIR", str(tmp_path / "out")],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {config}: ") and "python/object/apply:os.system" in last
    assert not marker.exists()
    assert not (tmp_path / "out").exists()
