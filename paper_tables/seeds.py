"""Repeated runs with other seeds: ``seeds: [0, 1, 2]`` in config.yaml (default ``[0]``).

Seed 0 is the seed every framework config of the project already sets (detectron2 ``SEED: 0``,
mmdetection ``randomness = dict(seed=0)``): its runs keep their folder ``{variant}`` and their
commands unchanged, so the default ``seeds: [0]`` gives exactly the runs and results of a
configuration without seeds. Another seed ``s`` runs in ``{variant}_seed{s}`` beside it, with
the neutral ``--seed s`` option of the training and prediction scripts, which each
adapter writes into its framework's seed. The tables keep the seed-0 run as the measured value and add
the mean and standard deviation over all seeds (:mod:`paper_tables.uncertainty`).

What a seed changes (the data, the val split and the evaluation stay the same):

- detectron2 (Mask R-CNN R-18/R-50, Swin-T, SparseInst): ``cfg.SEED`` seeds Python, NumPy and
  torch (``default_setup``): the initial weights of every layer not loaded from a checkpoint,
  the training sampler's shuffling (data order: its seed is drawn from the seeded NumPy), the
  random flips, and DCL's sampling of anchors, positives and negatives (torch's global RNG).
- mmdetection (RefineMask): ``randomness.seed`` seeds Python, NumPy and torch
  (``set_random_seed``) and the sampler: initial weights, data order, flips and DCL's sampling.

Neither makes the CPU kernels deterministic across machines: a seed repeats a run on the same
machine and software, not on another CPU (see the README's "Honest claims").
"""

from __future__ import annotations

from typing import Any, Iterable

from .experiments import ConfigError

__all__ = ["DEFAULT_SEED", "check_seeds", "seed_option", "seed_variant", "seeded_runs"]

#: The seed the framework configs set; its runs keep today's folder names.
DEFAULT_SEED = 0


def check_seeds(seeds: Any) -> list[int]:
    """``seeds`` as a list of distinct non-negative ints that includes :data:`DEFAULT_SEED`.

    Raises:
        ConfigError: anything else (the message says what).
    """
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise ConfigError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ConfigError(f"seeds must be non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct, got {seeds!r}")
    if DEFAULT_SEED not in seeds:
        raise ConfigError(f"seeds must include {DEFAULT_SEED}, the configs' own seed (its runs "
                          f"answer the tables), got {seeds!r}")
    return list(seeds)


def seed_variant(variant: str, seed: int) -> str:
    """The run folder name of ``variant`` at ``seed``: unchanged for the default seed."""
    return variant if seed == DEFAULT_SEED else f"{variant}_seed{seed}"


def seeded_runs(runs: Iterable[str], seeds: Iterable[int]) -> dict[str, tuple[str, int]]:
    """``{seeded run: (run, seed)}`` for every run and every seed but the default."""
    out = {}
    for run in runs:
        for s in seeds:
            if s != DEFAULT_SEED:
                out[seed_variant(run, s)] = (run, s)
    return out


def seed_option(seed: int) -> list[str]:
    """The training/prediction CLIs' neutral ``--seed`` words for ``seed``; none for the default
    seed, so those runs keep their commands. Each adapter writes it into its own config key
    (detectron2 ``SEED``, mmdetection ``randomness.seed``)."""
    return [] if seed == DEFAULT_SEED else ["--seed", str(int(seed))]
