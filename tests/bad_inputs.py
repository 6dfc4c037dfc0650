"""Bad inputs shared by the reliability tests: a tiny COCO set, a weights file that runs a
command when unpickled, damaged checkpoints, and the scripts run as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MMDET_DIR = REPO / "baselines" / "mmdet"

#: How a run's newest checkpoint can be left damaged (by a power loss, a full disk, a user).
DAMAGES = ("truncated", "empty_file", "missing", "empty_tag")


class Command:
    """Unpickling this runs ``touch marker``, as a hostile weights file would."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def tiny_coco(folder: Path) -> Path:
    """``folder/gt.json``: one 32 x 32 image (``folder/a.png``) with one square instance."""
    from PIL import Image

    Image.new("RGB", (32, 32)).save(folder / "a.png")
    gt = folder / "gt.json"
    gt.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "height": 32, "width": 32}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 16, 16],
                         "area": 256, "iscrowd": 0,
                         "segmentation": [[4, 4, 20, 4, 20, 20, 4, 20]]}]}))
    return gt


def damage(checkpoint: Path, how: str) -> None:
    """Damage ``checkpoint`` (or, for ``empty_tag``, the ``last_checkpoint`` beside it)."""
    if how == "truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    elif how == "empty_file":
        checkpoint.write_bytes(b"")
    elif how == "missing":
        checkpoint.unlink()
    elif how == "empty_tag":
        (checkpoint.parent / "last_checkpoint").write_text("")
    else:
        raise ValueError(f"unknown damage {how!r}")


def run_script(*args, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python ARGS`` from the repository root, one thread, dcl_mmdet importable."""
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(MMDET_DIR), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=timeout)
