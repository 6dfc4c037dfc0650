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
LOCK_MMDET = _pins((REPO / "envs/requirements-mmdet.txt").read_text().splitlines())


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


def _env_pip_lines(name):
    env = yaml.safe_load((REPO / f"envs/{name}.yaml").read_text())
    return next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)


@pytest.mark.parametrize("name", ENVS)
def test_every_env_requirement_is_what_the_lock_files_pin(name):
    """Not only the shared pins: every `==` pin of the env is the locked version, and every
    other requirement (`setuptools<81`, `wheel`) is met by a locked version, so a cluster's
    conda environment and `make setup`'s venv run the same packages."""
    from packaging.requirements import Requirement

    # The project venv is both lock files (Makefile: requirements-cpu.txt, then the mmdet stack
    # with requirements-mmdet.txt, which pins setuptools < 81 for detectron2 v0.5 too).
    assert not set(LOCK) & set(LOCK_MMDET)
    lock = {**LOCK, **LOCK_MMDET}
    # install_mmdet.py pins the mmdetection stack of the mmdet env from requirements-mmdet.txt.
    assert name != "mmdet" or "requirements-mmdet.txt" in (REPO / "envs/install_mmdet.py").read_text()
    unlocked = []
    for line in _env_pip_lines(name):
        req = Requirement(line.split("#")[0].strip())
        key = req.name.lower().replace("_", "-")
        if key == "wheel":
            continue  # a build tool the lock leaves to pip
        if key not in lock:
            unlocked.append(key)
            continue
        assert req.specifier.contains(lock[key], prereleases=True), (line, lock[key])
    assert unlocked == [], f"{name}.yaml names packages no lock file pins: {unlocked}"


def _rule_blocks(text: str):
    """(rule name, its lines, the rule it derives from or None) for every rule of a .smk file,
    named or not, at any indent; a `use rule A as B with:` block is B, derived from A."""
    blocks, current, indent = [], None, None
    for line in text.splitlines():
        m = re.match(r"^(\s*)(?:rule\s*(\w*)|use\s+rule\s+(\w+)\s+as\s+(\w+)(?:\s+with)?)\s*:", line)
        if m:
            name = m.group(2) or m.group(4) or "<anonymous>"
            current = [name, [], m.group(3)]
            indent = len(m.group(1))
            blocks.append(current)
            continue
        if current is not None and line.strip() and len(line) - len(line.lstrip()) <= indent:
            current = None
        if current is not None:
            current[1].append(line)
    return blocks


def _python_command_builders() -> set[str]:
    """common.smk's functions that build a rule's shell command running python (the train and
    predict rules' `params: command=...`)."""
    text = (REPO / "workflow/rules/common.smk").read_text()
    builders = set()
    for m in re.finditer(r"^def (\w+)\(.*?(?=^\S)", text + "\nEND", re.M | re.S):
        if re.search(r"\bpython\b", m.group(0)) and re.search(r"\breturn\b", m.group(0)):
            builders.add(m.group(1))
    return builders


def _runs_python(body: str, builders: set[str]) -> bool:
    return bool(re.search(r"^\s*(script|run):", body, re.M) or re.search(r"\bpython\b|\bdcl-", body)
                or any(re.search(rf"=\s*{b}\b", body) for b in builders))


def test_every_rule_that_runs_python_names_an_environment():
    """`--sdm conda` runs a rule in its environment only if the rule names one: every rule
    with a `script:`, or a shell command calling python or a project console script (dcl-*),
    has `conda:` (rules that only read or write files may have none). A shell command built by
    a common.smk function counts by what the function writes; a `use rule ... with:` twin runs
    what its parent runs and names its own environment."""
    builders = _python_command_builders()
    assert {"train_command", "predict_command"} <= builders, builders
    runs_python, without = [], []
    parents = {}
    for smk in sorted((REPO / "workflow/rules").glob("*.smk")):
        for name, lines, parent in _rule_blocks(smk.read_text()):
            body = "\n".join(lines)
            parents[name] = _runs_python(body, builders) or bool(parent and parents.get(parent))
            if parents[name]:
                runs_python.append(name)
                if not re.search(r"^\s*conda:", body, re.M):
                    without.append(f"{smk.name}:{name}")
    assert len(runs_python) >= 20, runs_python
    assert without == []


def test_mmdet_rules_use_the_mmdet_environment():
    """The mmdet and the mmseg twins of the train/predict rules run in envs/mmdet.yaml (the
    OpenMMLab stack, mmsegmentation included), every other one in detectron2's."""
    text = (REPO / "workflow/rules/train.smk").read_text() + (REPO / "workflow/rules/evaluate.smk").read_text()
    mmdet = []
    for name, lines, _ in _rule_blocks(text):
        body = "\n".join(lines)
        # The OpenMMLab twins of the train/predict rules are the ones constrained to their models.
        if re.search(r'baselines/mm(det|seg)/|models_of\("mm(det|seg)"\)', body):
            mmdet.append(name)
            assert "envs/mmdet.yaml" in body, name
        elif "conda:" in body:
            assert "envs/detectron2.yaml" in body, name
    assert sorted(mmdet) == ["predict_mmdet", "predict_mmseg", "train_mmdet", "train_mmseg"], mmdet
    pins = (REPO / "envs/requirements-mmdet.txt").read_text()
    assert "mmsegmentation==1.2.2" in pins
