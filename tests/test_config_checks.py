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


def _mutated(path: tuple, value) -> dict:
    """CONFIG with the entry at ``path`` (keys/indices) set to ``value``."""
    config = copy.deepcopy(CONFIG)
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return config


SCHEMA_MISTAKES = [
    (("experiments", "table1", "rows", 1, "loss_weight"), float("inf"), "inf is greater than"),
    (("experiments", "table3", "rows", 0, "temperature"), float("inf"), "inf is greater than the maximum of 10"),
    (("experiments", "table4", "rows", 1, "num_samples"), 100_000_000, "100000000 is greater"),
    (("experiments", "supp_unequal", "rows", 1, "num_negatives"), 10**6, "1000000 is greater"),
    (("datasets", "../outside"), CONFIG["datasets"]["embedded"], "'../outside' does not match"),
    (("presets", "../outside"), CONFIG["presets"]["smoke"], "'../outside' does not match"),
    (("presets", "embedded", "models", "mask_rcnn", "name"), "..", "'..' does not match"),
]


@pytest.mark.parametrize("path, value, needle", SCHEMA_MISTAKES)
def test_the_schema_bounds_settings_and_keeps_run_folders_under_results(path, value, needle):
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    validate(copy.deepcopy(CONFIG), str(REPO / "workflow/schemas/config.schema.yaml"))
    with pytest.raises(WorkflowError, match="Error validating config") as err:
        validate(_mutated(path, value), str(REPO / "workflow/schemas/config.schema.yaml"))
    assert needle in str(err.value)


def test_a_nan_lambda_or_tau_stops_the_plan_naming_the_row():
    # NaN compares false with every bound, so the schema lets it through; the plan does not.
    for key in ("loss_weight", "temperature"):
        config = _mutated(("experiments", "table2", "rows", 1, key), float("nan"))
        with pytest.raises(ConfigError, match=rf"^experiments\.table2\.rows\[1\]: {key} must be "
                                              "a finite number, got nan$"):
            expand(config, "embedded")


@pytest.mark.parametrize("path, value, needle", [
    SCHEMA_MISTAKES[0],
    (("experiments", "table1", "rows", 1, "loss_weight"), float("nan"), "must be a finite number"),
    SCHEMA_MISTAKES[4],
])
def test_bad_settings_fail_the_dry_run_before_any_job(tmp_path, path, value, needle):
    from test_workflow import snakemake, workdir

    config = _mutated(path, value)
    wd = workdir(tmp_path, **{path[0]: config[path[0]]})
    result = snakemake(wd, "-n", "--cores", "1", check=False)
    assert result.returncode != 0 and "Job stats" not in result.stdout
    assert needle in result.stdout + result.stderr
    assert sorted(p.name for p in wd.iterdir() if not p.name.startswith(".")) == ["config.yaml"]
