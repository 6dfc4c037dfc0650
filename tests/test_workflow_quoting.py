"""Paths with spaces reach every shell command of the workflow as one argument each."""

from __future__ import annotations

import shlex
import subprocess

import yaml

from test_workflow import ENV, REPO

GAP = "sp ace"  # in every configurable path, and in the repository's own path


def test_every_shell_command_quotes_its_paths(tmp_path):
    # The repository seen through a folder with a space (Snakefile paths follow it).
    repo = tmp_path / f"repo {GAP}"
    repo.mkdir()
    (repo / "dcl").symlink_to(REPO)
    wd = tmp_path / f"work {GAP}"
    wd.mkdir()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["downloads"] = f"dl {GAP}"
    config["sources"] = {"cityscapes": f"raw {GAP}/cityscapes"}
    config["datasets"]["cityscapes"] = {
        split: {"json": f"data {GAP}/{split}.json", "images": f"data {GAP}/{split} images"}
        for split in ("train", "val")}
    config["presets"]["embedded"]["datasets"]["cityscapes"] = "cityscapes"
    (wd / "config.yaml").write_text(yaml.safe_dump(config))

    result = subprocess.run(
        ["snakemake", "--snakefile", str(repo / "dcl/Snakefile"), "--directory", str(wd),
         "-n", "-p", "--cores", "2"],
        env=ENV, cwd=wd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    commands = [line.split("Shell command:", 1)[1] for line in result.stdout.splitlines()
                if line.startswith("Shell command:")]
    rules = {line.split()[1].rstrip(":") for line in result.stdout.splitlines()
             if line.startswith(("rule ", "localrule "))}
    # Every kind of shell rule with a path is planned: data, training, prediction, analysis.
    assert {"embedded_dataset", "cityscapes_coco_json", "occ_split_embedded",
            "train_detectron2", "train_mmdet", "predict_detectron2", "predict_mmdet",
            "predictions_subset", "evaluate_cityscapes", "seg_errors", "features", "figure2",
            "figure4"} <= rules
    head, tail = GAP.split()
    words = [w for command in commands for w in shlex.split(command)]
    split_apart = [w for w in words if w.endswith(head) or w.startswith(tail)]
    assert not split_apart, split_apart
    for path in (f"dl {GAP}", f"raw {GAP}/cityscapes", f"data {GAP}/train.json",
                 f"repo {GAP}/dcl/baselines/detectron2/train_net.py"):
        assert any(path in w for w in words), path
