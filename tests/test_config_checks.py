"""Mistakes in config.yaml stop the plan before any job, with one line naming the entry."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from paper_tables.experiments import ConfigError, expand

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())


def _with_row_change(table: str, index: int, **change) -> dict:
    config = copy.deepcopy(CONFIG)
    config["experiments"][table]["rows"][index].update(change)
    return config


@pytest.mark.parametrize("change, needle", [
    ({"model": "mask_rcnnn"}, "model role 'mask_rcnnn'"),
    ({"dataset": "cityscape"}, "dataset role 'cityscape'"),
    ({"scales": ["papr"]}, "scales ['papr']"),
])
@pytest.mark.parametrize("scale", ["embedded", "paper"])
def test_a_role_or_scale_no_preset_defines_stops_the_plan_naming_the_row(change, needle, scale):
    config = _with_row_change("table1", 2, **change)
    with pytest.raises(ConfigError) as err:
        expand(config, scale)
    message = str(err.value)
    assert message.startswith("experiments.table1.rows[2]: ") and needle in message
    assert "\n" not in message


def test_a_role_only_some_presets_define_is_not_a_typo():
    # mask_rcnn_coco_init plays only at paper scale: elsewhere its rows stay visibly empty.
    rows = [r for r in expand(CONFIG, "embedded").tables["table5"]
            if r.model_role == "mask_rcnn_coco_init"]
    assert rows and all(r.status == "no_model" for r in rows)


def test_a_table_level_role_typo_is_named_too():
    config = copy.deepcopy(CONFIG)
    config["experiments"]["table2"]["model"] = "mask_rcnnn"
    with pytest.raises(ConfigError, match=r"^experiments\.table2: model role 'mask_rcnnn'"):
        expand(config, "embedded")


def test_a_row_typo_fails_the_dry_run_with_one_line(tmp_path):
    from test_workflow import snakemake, workdir

    experiments = copy.deepcopy(CONFIG["experiments"])
    experiments["table4"]["rows"][1]["model"] = "mask_rcnnn"
    result = snakemake(workdir(tmp_path, experiments=experiments), "-n", "--cores", "1",
                       check=False)
    assert result.returncode != 0 and "Job stats" not in result.stdout
    lines = [ln for ln in (result.stdout + result.stderr).splitlines()
             if "mask_rcnnn" in ln]
    assert lines and lines[0].lstrip().startswith(
        "config.yaml: experiments.table4.rows[1]: model role 'mask_rcnnn'"), lines
