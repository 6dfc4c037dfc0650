"""The pixel-contrastive losses by name, and the neutral ``--loss`` option of the training CLIs.

``LOSSES`` maps a loss's name to its settings class and its module; a new loss (ContrastMask,
CAC) is one more entry. The option names a loss and its settings in words every adapter reads
the same way::

    --loss dcl loss_weight=1.2 temperature=0.07 num_samples=32
    --loss none                      # no pixel-contrastive loss: the baseline

Adapters (``dcl_detectron2``, ``dcl_mmdet``) translate the parsed settings into their own config
keys; the experiment plan and the workflow only ever write this form.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from torch import nn

from .cac_roi import CACMaskLoss, CACSettings
from .loss import DenseContrastiveLoss
from .settings import DCLSettings

__all__ = ["LOSSES", "LOSS_OPTION_HELP", "NO_LOSS", "LossEntry", "build_loss", "format_loss_option", "loss_settings",
           "parse_loss_option"]

NO_LOSS = "none"
# The CLIs' help for --loss (argparse, nargs="+", metavar "NAME|KEY=VALUE").
LOSS_OPTION_HELP = (
    "the pixel-contrastive loss and its settings, e.g. '--loss dcl loss_weight=1.2 "
    "temperature=0.07 num_samples=32', or '--loss none' (the baseline); written into the config "
    "after the config file and before the overrides. Takes every word up to the next flag")


@dataclass(frozen=True)
class LossEntry:
    """A loss: its settings class (``from_mapping``, ``variant_name``, ``enabled``) and its
    module class (``from_settings(settings, channels)``)."""

    settings: type
    module: type


LOSSES: dict[str, LossEntry] = {
    DCLSettings.name: LossEntry(DCLSettings, DenseContrastiveLoss),
    CACSettings.name: LossEntry(CACSettings, CACMaskLoss),
}


def loss_settings(name: str, mapping: Optional[Mapping[str, Any]] = None):
    """The settings of loss ``name`` from ``mapping`` (missing keys take the defaults).

    Raises:
        ValueError: an unknown loss name or key, or a bad value (one line).
        TypeError: a value of the wrong type.
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; known: {sorted(LOSSES)} or {NO_LOSS!r}")
    return LOSSES[name].settings.from_mapping(dict(mapping or {}))


def build_loss(settings, channels: int) -> Optional[nn.Module]:
    """The loss module of ``settings`` for ``channels``-channel features; None when the
    settings build no loss (lambda = 0), so the model is exactly the baseline."""
    if not settings.enabled:
        return None
    return LOSSES[settings.name].module.from_settings(settings, channels)


def _value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word, e.g. roi_selection=first


def parse_loss_option(tokens: Sequence[str]):
    """``["dcl", "loss_weight=1.2", ...]`` -> settings; ``["none"]`` -> None.

    Values are Python literals (``1.2``, ``32``, ``True``, ``None``) or bare words.

    Raises:
        ValueError: no name, ``none`` with settings, a token that is not ``KEY=VALUE``, a
            repeated key, an unknown loss or key, or a bad value; one line.
        TypeError: a value of the wrong type.
    """
    if not tokens:
        raise ValueError(f"--loss: give a loss name ({sorted(LOSSES)} or {NO_LOSS!r})")
    name, *items = tokens
    if name == NO_LOSS:
        if items:
            raise ValueError(f"--loss {NO_LOSS} takes no settings, got {items}")
        return None
    mapping: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not (sep and key):
            raise ValueError(f"--loss {name}: expected KEY=VALUE, got {item!r} (--loss takes "
                             "every word up to the next flag: put it before another flag)")
        if key in mapping:
            raise ValueError(f"--loss {name}: {key} given twice")
        mapping[key] = _value(text)
    return loss_settings(name, mapping)


def format_loss_option(settings) -> list[str]:
    """The ``--loss`` words of ``settings`` (None: ``["none"]``): the name, then every setting in
    declaration order, less those that are None by default (|A|, |P|, |N| = K);
    :func:`parse_loss_option` reads them back."""
    if settings is None:
        return [NO_LOSS]
    words = [settings.name]
    default = type(settings)().to_mapping()
    for key, value in settings.to_mapping().items():
        if value is not None or default[key] is not None:
            words.append(f"{key}={value}" if isinstance(value, str) else f"{key}={value!r}")
    return words
