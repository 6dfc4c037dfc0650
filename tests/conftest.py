"""Fixtures shared by the model tests that train through baselines/detectron2/train_net.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def embedded_dataset(tmp_path_factory) -> Path:
    """The embedded dataset, built once per session from the shared registry cache."""
    from dcl_data.embedded import build_embedded_dataset

    downloads = Path(os.environ.get("DCL_DATA_DOWNLOADS", REPO / "resources" / "downloads"))
    out = tmp_path_factory.mktemp("embedded_data") / "embedded"
    build_embedded_dataset(downloads, out)
    return out


@pytest.fixture
def train_net():
    """Run train_net.py with ``args`` at one thread; fails the test, with the output's tail, on
    a non-zero exit. Returns the CompletedProcess."""

    def run(*args, timeout=600):
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        result = subprocess.run(
            [sys.executable, str(REPO / "baselines/detectron2/train_net.py"), *args],
            env=env, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result

    return run
