"""Config and weights files cannot run code: a crafted file is refused with one line, and the
command it carries never runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bad_inputs import REPO, Command, run_script, tiny_coco
D2_CONFIG = REPO / "baselines/detectron2/configs/embedded/mask_rcnn_R_18_FPN.yaml"


def _evil_yaml(path: Path, marker: Path, base: Path) -> Path:
    path.write_text(f"_BASE_: {base}\n"
                    f"OUTPUT_DIR: !!python/object/apply:os.system ['touch {marker}']\n")
    return path


def test_train_net_refuses_a_yaml_config_with_a_python_tag(tmp_path):
    pytest.importorskip("detectron2")
    marker = tmp_path / "marker"
    config = _evil_yaml(tmp_path / "evil.yaml", marker, D2_CONFIG)
    result = run_script(REPO / "baselines/detectron2/train_net.py", "--config-file", config,
                        "OUTPUT_DIR", tmp_path / "out")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {config}: ") and "python/object/apply:os.system" in last
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_pickled_weights_pass_and_code_is_refused_before_it_runs(tmp_path, protocol):
    import pickle

    import numpy as np

    from dcl_data.weights import check_plain_pickle

    plain = tmp_path / "R-50.pkl"  # the model-zoo layout: numpy blobs and metadata
    plain.write_bytes(pickle.dumps({"model": {"conv1.weight": np.ones((2, 3), np.float32),
                                              "steps": np.int64(3)},
                                    "__author__": "zoo", "matching_heuristics": True},
                                   protocol=protocol))
    check_plain_pickle(plain)
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"model": {"w": Command(marker)}}))
    with pytest.raises(pickle.UnpicklingError) as err:
        check_plain_pickle(evil)
    assert str(err.value) == f"{evil}: global posix.system is not allowed in a weights file"
    assert not marker.exists()


@pytest.mark.parametrize("script", ["train_net.py", "dump_features.py"])
def test_detectron2_scripts_refuse_pkl_weights_that_would_run_code_in_one_line(tmp_path, script):
    pytest.importorskip("detectron2")
    import pickle

    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"model": {"w": Command(marker)}, "__author__": "x"}))
    gt = tiny_coco(tmp_path)
    flag = ["--eval-only"] if script == "train_net.py" else ["--out", tmp_path / "features.npz"]
    result = run_script(REPO / "baselines/detectron2" / script, *flag, "--config-file", D2_CONFIG,
                        f"--dataset=tiny={gt}:{tmp_path}", "DATASETS.TEST", "('tiny',)",
                        "MODEL.WEIGHTS", evil, "OUTPUT_DIR", tmp_path / "out")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {evil} refused: UnpicklingError: {evil}: global posix.system is not allowed "
        "in a weights file")
    assert not marker.exists()
