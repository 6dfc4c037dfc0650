"""Every shipped ``*_dcl`` framework config states a loss setting that config.yaml's experiment
matrix runs with its baseline config (lambda, tau, K and the rest), so the two cannot drift."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from paper_tables.experiments import expand, run_loss

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
DCL_CONFIGS = sorted(REPO.glob("baselines/detectron2/configs/**/*_dcl.yaml")) + \
    sorted(REPO.glob("baselines/mmdet/configs/**/*_dcl.py"))


def matrix_settings() -> dict[Path, list]:
    """Baseline config file -> the DCL settings of every run of the matrix on it, all scales."""
    found: dict[Path, list] = {}
    for scale in CONFIG["presets"]:
        plan = expand(CONFIG, scale)
        for run, v in plan.runs.items():
            settings = run_loss(v)
            if settings is not None:
                model = plan.models[run.split("/")[1]]
                found.setdefault((REPO / model["config"]).resolve(), []).append(settings)
    return found


def detectron2_settings(path: Path):
    pytest.importorskip("detectron2")
    from dcl_detectron2.config import settings_from_node
    from detectron2_inputs import project_cfg

    cfg = project_cfg(path)
    if cfg.MODEL.META_ARCHITECTURE == "SparseInst":
        return settings_from_node(cfg.MODEL.SPARSE_INST.CONTRAST_LOSS)
    assert cfg.MODEL.ROI_MASK_HEAD.NAME == "ContrastConvUpsampleHead"
    assert cfg.MODEL.ROI_HEADS.NAME == "ContrastRoIHeads"
    return settings_from_node(cfg.MODEL.ROI_MASK_HEAD.CONTRAST_LOSS)


def mmdet_settings(path: Path):
    pytest.importorskip("mmdet")
    from mmengine.config import Config

    from dcl_core import DCLSettings

    return DCLSettings.from_mapping(Config.fromfile(str(path)).model.roi_head.mask_head.loss_contrast)


def test_there_are_dcl_configs():
    assert len(DCL_CONFIGS) >= 8


@pytest.mark.parametrize("path", DCL_CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_dcl_config_is_a_setting_of_the_matrix(path):
    base = path.with_name(path.name.replace("_dcl", ""))
    runs = matrix_settings().get(base.resolve())
    assert runs, f"config.yaml runs no DCL variant of {base.relative_to(REPO)}"
    settings = detectron2_settings(path) if path.suffix == ".yaml" else mmdet_settings(path)
    assert settings.enabled and settings in runs, (
        f"{path.name} states {settings}, which no row of config.yaml runs on "
        f"{base.name}: {sorted({s.variant_name() for s in runs})}")
