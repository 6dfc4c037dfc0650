"""The paper's experiment matrix (``config.yaml: experiments``) expanded for one scale.

The workflow asks this module which runs to train and the table renderers ask it which run
answers each row, so both read the matrix the same way.

A table row names a dataset ROLE and a model ROLE as the paper does ("cityscapes",
"mask_rcnn"); the scale's preset maps roles to the concrete dataset and model that play them
(``presets.<scale>.datasets`` / ``.models``). A run is named ``{dataset}/{model}/{variant}``
(``embedded/mask_rcnn_r18_fpn/dcl_w1.2_t0.07_k32``; several losses join their names with
``+``, :func:`dcl_core.losses_variant_name`); rows of different tables that resolve to the same
run share it. A row whose role has no player at the scale, or whose ``scales`` leave
the scale out, keeps its place in the table with a ``status`` saying why it is empty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from dcl_core import LOSSES, DCLSettings, loss_settings, losses_variant_name

__all__ = [
    "ROW_STATUS",
    "ConfigError",
    "check_matrix",
    "Plan",
    "Row",
    "expand",
    "run_loss",
    "run_losses",
    "variant_name",
    "variant_settings",
]

# A row's loss keys besides `dcl`: dcl_core's settings that the matrix varies.
LOSS_KEYS = ("loss_weight", "temperature", "num_samples", "with_projection",
             "num_anchors", "num_positives", "num_negatives")
VARIANT_KEYS = ("dcl",) + LOSS_KEYS
# Other registered losses: a row key named after the loss holds its settings (a mapping, {} for
# dcl_core's defaults), e.g. `contrastmask: {detach_features: false}`.
OTHER_LOSSES = tuple(name for name in LOSSES if name != DCLSettings.name)
# Variants of the mmseg models (CAC's table), named by their config file rather than by --loss
# settings: `cac: true` -> "cac", `baseline: official` -> "baseline_official" (the authors' own
# baseline where it differs from the one matched to CAC).
CAC_VARIANT = "cac"
OFFICIAL_BASELINE = "baseline_official"
# Filled in on every DCL row's settings (so the tables can label them): dcl_core's defaults.
SHOWN_KEYS = ("loss_weight", "temperature", "num_samples", "with_projection")
ROW_STATUS = {
    "run": "measured by a run of this scale",
    "not_at_scale": "not run at this scale (fewer sweep points than the paper)",
    "no_model": "no model plays this role at this scale",
    "no_split": "the dataset has no such split at this scale",
}


class ConfigError(ValueError):
    """The experiment matrix or a preset is inconsistent; the message names the entry."""


def check_matrix(config: Mapping[str, Any]) -> None:
    """Stop on what the schema cannot catch in ``experiments``: a typo'd role or scale, NaN.

    A role some presets leave out is a legitimate "no model plays this role" row there; a role
    that no preset's ``datasets`` / ``models`` names, or a ``scales:`` entry that is not a
    preset, can only be a mistake, and would otherwise leave its row silently empty. A NaN
    lambda or tau passes every JSON-Schema bound (NaN compares false), so it is refused here.

    Raises:
        ConfigError: one line naming the row (or table) and the bad name or value.
    """
    presets = config["presets"]
    known = {kind: sorted({role for p in presets.values() for role in p.get(kind + "s", {})})
             for kind in ("dataset", "model")}
    for table, spec in config["experiments"].items():
        entries = [(f"experiments.{table}", spec)]
        entries += [(f"experiments.{table}.rows[{i}]", row) for i, row in enumerate(spec["rows"])]
        for where, entry in entries:
            for kind, roles in known.items():
                role = entry.get(kind)
                if role is not None and role not in roles:
                    raise ConfigError(f"{where}: {kind} role {role!r} is defined by no preset "
                                      f"(known: {', '.join(roles)})")
            bad = [k for k in ("loss_weight", "temperature")
                   if isinstance(entry.get(k), float) and not math.isfinite(entry[k])]
            if bad:
                raise ConfigError(f"{where}: {bad[0]} must be a finite number, got {entry[bad[0]]}")
            unknown = [s for s in entry.get("scales", []) if s not in presets]
            if unknown:
                raise ConfigError(f"{where}: scales {unknown} are not presets "
                                  f"(known: {', '.join(sorted(presets))})")


def variant_settings(row: Mapping[str, Any]) -> dict:
    """A row's loss settings with dcl_core's defaults filled in: ``dcl`` and, with DCL on, its
    settings at the top level (``{"dcl": False}`` if off), plus each other loss the row names
    (:data:`OTHER_LOSSES`) as ``{name: every setting}``.

    Raises:
        ConfigError: DCL settings on a ``dcl: false`` row, another loss's settings that are not
            a mapping, or a setting dcl_core refuses.
    """
    v = {k: row[k] for k in VARIANT_KEYS if k in row}
    # `cac: true` names the mmseg models' CAC config variant; `cac: {settings}` (a mapping) is
    # CAC's RoI loss on a mask head, one of OTHER_LOSSES below.
    other = [k for k in ("cac", "baseline")
             if (row.get(k) is True if k == "cac" else row.get(k) not in (None, "matched"))]
    if other:
        if v.get("dcl", False) or len(other) > 1 or set(v) - {"dcl"}:
            raise ConfigError(f"{other[0]} is a variant of its own: no dcl, loss settings or "
                              "second variant key on the row")
        return {"dcl": False, "cac": True} if other == ["cac"] else {"dcl": False, "baseline": "official"}
    if not v.get("dcl", False):
        extra = sorted(set(v) - {"dcl"})
        if extra:
            raise ConfigError(f"a row with dcl: false sets loss settings {extra}")
        v = {"dcl": False}
    else:
        try:
            defaults = DCLSettings.from_mapping({k: v[k] for k in LOSS_KEYS if k in v})
        except (TypeError, ValueError) as e:
            raise ConfigError(str(e)) from None
        v = {**{k: getattr(defaults, k) for k in SHOWN_KEYS}, **v}
    for name in OTHER_LOSSES:
        if name not in row:
            continue
        if not isinstance(row[name], Mapping):
            raise ConfigError(f"{name}: give its settings as a mapping ({{}} for the defaults), "
                              f"got {row[name]!r}")
        try:
            v[name] = loss_settings(name, row[name]).to_mapping()
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{name}: {e}") from None
    return v


def run_losses(v: Mapping[str, Any]) -> tuple:
    """Every loss of a run's variant as dcl_core settings, in registry order (``()``: the
    baseline): what the training CLIs' ``--loss`` option takes (``dcl_core.format_loss_option``)."""
    losses = [] if not v["dcl"] else [
        DCLSettings.from_mapping({k: v[k] for k in LOSS_KEYS if k in v})]
    losses += [loss_settings(name, v[name]) for name in OTHER_LOSSES if name in v]
    return tuple(losses)


def run_loss(v: Mapping[str, Any]) -> Optional[DCLSettings]:
    """The DCL settings of a run's variant (None without DCL, whatever other loss it has)."""
    if not v["dcl"]:
        return None
    return DCLSettings.from_mapping({k: v[k] for k in LOSS_KEYS if k in v})


def variant_name(v: Mapping[str, Any]) -> str:
    """``baseline``, ``cac`` / ``baseline_official`` (the mmseg models' config variants), or
    dcl_core's name of the losses (``variant_name()`` of each settings, joined by ``+``), e.g.
    ``dcl_w1.2_t0.07_k32`` or ``dcl_w1.2_t0.07_k32+contrastmask_w0.1_te0.3_th0.7_s0.3_grad_noramp``."""
    if v.get("cac") is True:
        return CAC_VARIANT
    if v.get("baseline") == "official":
        return OFFICIAL_BASELINE
    return losses_variant_name(run_losses(v))


@dataclass(frozen=True)
class Row:
    """One row of one table, resolved for a scale."""

    table: str
    dataset_role: str
    model_role: str
    variant: str                 # variant_name(settings)
    settings: dict = field(hash=False, compare=False)
    split: str = "val"           # "val", or "occ" (the dataset's occlusion subset)
    dataset: Optional[str] = None  # the concrete dataset at this scale
    model: Optional[str] = None    # the concrete model name at this scale
    status: str = "run"          # a key of ROW_STATUS

    @property
    def run(self) -> Optional[str]:
        """``{dataset}/{model}/{variant}`` if a run answers the row, else None."""
        if self.status != "run":
            return None
        return f"{self.dataset}/{self.model}/{self.variant}"


@dataclass
class Plan:
    """The matrix at one scale: rows per table and the runs they need."""

    scale: str
    tables: dict[str, list[Row]]
    models: dict[str, dict]               # concrete model name -> its preset entry
    runs: dict[str, dict]                 # run -> variant settings (run_loss: neutral)

    def evaluations(self) -> list[tuple[str, str]]:
        """Unique (run, split) pairs that some row scores COCO-style (the mmseg runs' mIoU is
        written by their predict rule instead)."""
        seen = {}
        for rows in self.tables.values():
            for r in rows:
                if r.run and self.models[r.model]["framework"] != "mmseg":
                    seen[(r.run, r.split)] = None
        return list(seen)


def _check_variant_of_model(where: str, variant: str, model: Mapping[str, Any]) -> None:
    """An mmseg model runs its baseline and the variants it has a config file for; the other
    frameworks run no cac or official-baseline variant (their variants are --loss settings)."""
    own = model.get("variants", {})
    if model["framework"] == "mmseg":
        if variant != "baseline" and variant not in own:
            raise ConfigError(f"{where}: model {model['name']!r} has no config for variant "
                              f"{variant!r} (its variants: baseline, {', '.join(sorted(own)) or '-'})")
    elif variant in (CAC_VARIANT, OFFICIAL_BASELINE):
        raise ConfigError(f"{where}: variant {variant!r} is an mmseg model's, not of "
                          f"{model['framework']} model {model['name']!r}")


def expand(config: Mapping[str, Any], scale: Optional[str] = None) -> Plan:
    """Expand ``config["experiments"]`` for ``scale`` (default ``config["scale"]``).

    A preset's ``tables`` list, if given, keeps only those tables (the smoke preset).

    Raises:
        ConfigError: unknown scale, a row without a dataset or model role, a role or scale no
            preset defines or a NaN setting (:func:`check_matrix`), a role mapped to an unknown
            dataset, a model name shared by two different model entries, or loss settings
            dcl_core refuses. (Whether a framework can express a variant is its adapter's to
            say, when the run starts.)
    """
    check_matrix(config)
    scale = scale or config["scale"]
    presets = config["presets"]
    if scale not in presets:
        raise ConfigError(f"scale {scale!r} is not one of the presets {sorted(presets)}")
    preset = presets[scale]
    dataset_roles = preset.get("datasets", {})
    model_roles = preset.get("models", {})
    for role, d in dataset_roles.items():
        if d not in config["datasets"]:
            raise ConfigError(f"presets.{scale}.datasets.{role}: {d!r} is not one of the "
                              f"datasets {sorted(config['datasets'])}")
    models: dict[str, dict] = {}
    for role, m in model_roles.items():
        if m["name"] in models and models[m["name"]] != m:
            raise ConfigError(f"presets.{scale}.models.{role}: name {m['name']!r} is used by "
                              "another, different model entry")
        models[m["name"]] = m
    wanted = preset.get("tables")
    experiments = config["experiments"]
    unknown = sorted(set(wanted or ()) - set(experiments))
    if unknown:
        raise ConfigError(f"presets.{scale}.tables: unknown tables {unknown}")
    tables: dict[str, list[Row]] = {}
    runs: dict[str, dict] = {}
    for table, spec in experiments.items():
        if wanted is not None and table not in wanted:
            continue
        rows = []
        for i, row in enumerate(spec["rows"]):
            where = f"experiments.{table}.rows[{i}]"
            d_role = row.get("dataset", spec.get("dataset"))
            m_role = row.get("model", spec.get("model"))
            if d_role is None or m_role is None:
                raise ConfigError(f"{where}: needs a dataset and a model (on the row or table)")
            try:
                v = variant_settings(row)
            except ConfigError as e:
                raise ConfigError(f"{where}: {e}") from None
            split = row.get("split", "val")
            status, dataset, model = "run", dataset_roles.get(d_role), model_roles.get(m_role)
            if scale not in row.get("scales", [scale]):
                status = "not_at_scale"
            elif dataset is None or model is None:
                status = "no_model"
            elif split not in config["datasets"][dataset] \
                    and "semantic" not in config["datasets"][dataset]:  # one folder, all splits
                status = "no_split"
            r = Row(table, d_role, m_role, variant_name(v), v, split,
                    dataset if status == "run" else None,
                    model["name"] if status == "run" else None, status)
            if r.run:
                _check_variant_of_model(where, r.variant, model)
                runs[r.run] = v
            rows.append(r)
        tables[table] = rows
    return Plan(scale, tables, models, runs)
