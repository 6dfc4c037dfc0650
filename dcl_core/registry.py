"""The pixel-contrastive losses by name, and the neutral ``--loss`` option of the training CLIs.

``LOSSES`` maps a loss's name to its settings class and its module; a new loss (ContrastMask,
CAC) is one more entry. The option names one loss or several, each with its settings, in words
every adapter reads the same way::

    --loss dcl loss_weight=1.2 temperature=0.07 num_samples=32
    --loss dcl loss_weight=1.2 + contrastmask loss_weight=0.1   # two losses at once
    --loss none                      # no pixel-contrastive loss: the baseline

A combination is the losses' words joined by a ``+`` word (:data:`LOSS_SEPARATOR`); each loss at
most once. :func:`parse_losses` reads any of these forms into a tuple of settings (empty for the
baseline) and :func:`format_loss_option` writes them back. :func:`parse_loss_option` is the
one-loss reading, for adapters that hold a single loss. A combination's run folder is named
by :func:`losses_variant_name`: the settings' ``variant_name()`` joined by ``+``.

Adapters (``dcl_detectron2``, ``dcl_mmdet``) translate the parsed settings into their own config
keys; the experiment plan and the workflow only ever write this form.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from torch import nn

from .contrastmask import ContrastMaskLoss
from .contrastmask_settings import ContrastMaskSettings
from .loss import DenseContrastiveLoss
from .settings import DCLSettings

__all__ = ["LOSSES", "LOSS_OPTION_HELP", "LOSS_SEPARATOR", "NO_LOSS", "LossEntry", "build_loss",
           "format_loss_option", "loss_settings", "losses_variant_name", "parse_loss_option",
           "parse_losses"]

NO_LOSS = "none"
LOSS_SEPARATOR = "+"
# The CLIs' help for --loss (argparse, nargs="+", metavar "NAME|KEY=VALUE").
LOSS_OPTION_HELP = (
    "the pixel-contrastive loss and its settings, e.g. '--loss dcl loss_weight=1.2 "
    "temperature=0.07 num_samples=32', several joined by '+' ('--loss dcl + contrastmask "
    "loss_weight=0.1'), or '--loss none' (the baseline); written into the config after the "
    "config file and before the overrides. Takes every word up to the next flag")


@dataclass(frozen=True)
class LossEntry:
    """A loss: its settings class (``from_mapping``, ``variant_name``, ``enabled``) and its
    module class (``from_settings(settings, channels)``)."""

    settings: type
    module: type


LOSSES: dict[str, LossEntry] = {
    DCLSettings.name: LossEntry(DCLSettings, DenseContrastiveLoss),
    ContrastMaskSettings.name: LossEntry(ContrastMaskSettings, ContrastMaskLoss),
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


def _parse_one(name: str, items: Sequence[str]):
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


def parse_losses(tokens: Sequence[str]) -> tuple:
    """``["dcl", "loss_weight=1.2", "+", "contrastmask", ...]`` -> (DCLSettings, ...), in the
    order given; ``["none"]`` -> ``()``.

    Values are Python literals (``1.2``, ``32``, ``True``, ``None``) or bare words.

    Raises:
        ValueError: no name, an empty part around ``+``, ``none`` with settings or in a
            combination, a loss named twice, a token that is not ``KEY=VALUE``, a repeated key,
            an unknown loss or key, or a bad value; one line.
        TypeError: a value of the wrong type.
    """
    if not tokens:
        raise ValueError(f"--loss: give a loss name ({sorted(LOSSES)} or {NO_LOSS!r})")
    parts: list[list[str]] = [[]]
    for token in tokens:
        if token == LOSS_SEPARATOR:
            parts.append([])
        else:
            parts[-1].append(token)
    if any(not part for part in parts):
        raise ValueError(f"--loss: a loss name must stand on each side of {LOSS_SEPARATOR!r}, "
                         f"got {' '.join(tokens)!r}")
    if parts[0][0] == NO_LOSS:
        if len(parts) > 1 or len(parts[0]) > 1:
            raise ValueError(f"--loss {NO_LOSS} takes no settings and no other loss, got "
                             f"{' '.join(tokens)!r}")
        return ()
    names = [part[0] for part in parts]
    if NO_LOSS in names:
        raise ValueError(f"--loss: {NO_LOSS!r} cannot be combined with other losses")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"--loss: {repeated[0]} given twice (each loss at most once)")
    return tuple(_parse_one(part[0], part[1:]) for part in parts)


def parse_loss_option(tokens: Sequence[str]):
    """``["dcl", "loss_weight=1.2", ...]`` -> settings; ``["none"]`` -> None: the one-loss
    reading of :func:`parse_losses`, for adapters that hold a single loss.

    Raises:
        ValueError: as :func:`parse_losses`, or a combination of losses (one line).
        TypeError: a value of the wrong type.
    """
    losses = parse_losses(tokens)
    if len(losses) > 1:
        raise ValueError(f"this model takes one pixel-contrastive loss, got {len(losses)} ("
                         + f" {LOSS_SEPARATOR} ".join(s.name for s in losses) + ")")
    return losses[0] if losses else None


def _format_one(settings) -> list[str]:
    words = [settings.name]
    default = type(settings)().to_mapping()
    for key, value in settings.to_mapping().items():
        if value is not None or default[key] is not None:
            words.append(f"{key}={value}" if isinstance(value, str) else f"{key}={value!r}")
    return words


def format_loss_option(settings) -> list[str]:
    """The ``--loss`` words of ``settings``: None or an empty sequence gives ``["none"]``; one
    settings object, or a sequence of them joined by ``+``, gives per loss its name, then every
    setting in declaration order, less those that are None by default (DCL's |A|, |P|, |N| =
    K). :func:`parse_losses` reads them back (and :func:`parse_loss_option` a single loss)."""
    if settings is None:
        return [NO_LOSS]
    losses = list(settings) if isinstance(settings, (list, tuple)) else [settings]
    if not losses:
        return [NO_LOSS]
    words: list[str] = []
    for i, s in enumerate(losses):
        words += ([LOSS_SEPARATOR] if i else []) + _format_one(s)
    return words


def losses_variant_name(losses: Sequence) -> str:
    """The run folder's variant of a set of losses: ``baseline`` for none, the settings'
    ``variant_name()`` for one, and those names joined by ``+`` in registry order (so the
    order of a command line does not matter) for several."""
    if not losses:
        return "baseline"
    order = list(LOSSES)
    return LOSS_SEPARATOR.join(s.variant_name() for s in
                               sorted(losses, key=lambda s: order.index(s.name)))
