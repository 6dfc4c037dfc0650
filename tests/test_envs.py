"""The conda environment files for clusters (envs/*.yaml, used with `snakemake --sdm conda`):
pins agree with the project's lock file, rules name files that exist, and the post-deploy
scripts refuse to run outside the checkout with a clear message."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENVS = ("detectron2", "mmdet")


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)==([^\s#;]+)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


LOCK = _pins((REPO / "envs/requirements-cpu.txt").read_text().splitlines())


@pytest.mark.parametrize("name", ENVS)
def test_env_pins_match_the_lock_file(name):
    env = yaml.safe_load((REPO / f"envs/{name}.yaml").read_text())
    assert "conda-forge" in env["channels"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    pins = _pins(pip)
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    shared = sorted(set(pins) & set(LOCK))
    assert len(shared) >= 10, shared
    assert {p: pins[p] for p in shared} == {p: LOCK[p] for p in shared}


def test_conda_directives_name_existing_env_files():
    named = []
    for smk in (REPO / "workflow/rules").glob("*.smk"):
        for rel in re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            named.append(rel)
            assert (smk.parent / rel).resolve().is_file(), f"{smk.name}: {rel}"
            assert (smk.parent / rel).resolve().parent == REPO / "envs"
    assert named, "no rule names an environment"


@pytest.mark.parametrize("name", ENVS)
def test_post_deploy_refuses_to_run_outside_the_checkout(tmp_path, name):
    env = {k: v for k, v in os.environ.items() if k != "DCL_REPO"}
    result = subprocess.run(["bash", str(REPO / f"envs/{name}.post-deploy.sh")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"{name}.post-deploy.sh: {tmp_path} is not the DCL reproduction "
                                     "checkout; export DCL_REPO=/path/to/it")
