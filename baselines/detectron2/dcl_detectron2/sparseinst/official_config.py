"""The official SparseInst config files (hustvl/SparseInst ``configs/*.yaml``) in this project.

The official code names some ``MODEL.SPARSE_INST`` keys differently and has keys this project
does not need (shared/reference/fidelity-sparseinst-refinemask.md, Sec. 1.2); yacs would reject
them. :func:`translate_official_keys` maps each onto the project's key with the same effect,
drops the ones without effect here, and refuses, with one line naming the key, a value this
project cannot reproduce:

=======================================  =======================================================
official key                             here
=======================================  =======================================================
``SPARSE_INST.ENCODER.NAME``             ``InstanceContextEncoder`` only (the one encoder)
``SPARSE_INST.ENCODER.IN_FEATURES``      ``SPARSE_INST.IN_FEATURES``
``SPARSE_INST.DECODER.NAME``             ``BaseIAMDecoder`` -> ``DECODER.GROUPS 1``;
                                         ``GroupIAMDecoder`` -> ``GROUPS`` (official default 4);
                                         ``GroupIAMSoftDecoder`` -> also ``IAM_ACTIVATION softmax``
``SPARSE_INST.DECODER.NUM_CLASSES``      ``MODEL.ROI_HEADS.NUM_CLASSES``
``SPARSE_INST.DECODER.OUTPUT_IAM``       dropped (the decoder always returns the maps)
``SPARSE_INST.MAX_DETECTIONS``           dropped (unused by the official inference; here
                                         ``TEST.DETECTIONS_PER_IMAGE`` caps, 100 = no cap at
                                         100 queries)
``SPARSE_INST.MATCHER.NAME``             ``SparseInstMatcher`` only
``SPARSE_INST.MATCHER.BETA``             must be ``1 - MATCHER.ALPHA`` (the exponent used here)
``SPARSE_INST.LOSS.NAME`` / ``ITEMS``    ``SparseInstCriterion`` / ``("labels", "masks")`` only
``SPARSE_INST.DATASET_MAPPER``           ``SparseInstDatasetMapper`` -> dropped (detectron2's
                                         ``DatasetMapper`` draws the same sizes and flips)
``SOLVER.BACKBONE_MULTIPLIER``           1.0 only
``SOLVER.AMSGRAD``                       False only
``MODEL.PVT``, ``MODEL.CSPNET``          dropped (those backbones are not part of the project)
=======================================  =======================================================
"""

from __future__ import annotations

import ast
from typing import Any, Dict, List, Tuple

__all__ = ["OFFICIAL_DECODERS", "merge_config_file", "translate_official_keys",
           "translate_official_opts"]

_SI = "MODEL.SPARSE_INST."

#: Official decoder name -> (this project's DECODER.GROUPS or None = the file's/official 4,
#: IAM_ACTIVATION).
OFFICIAL_DECODERS = {
    "BaseIAMDecoder": (1, "sigmoid"),
    "GroupIAMDecoder": (None, "sigmoid"),
    "GroupIAMSoftDecoder": (None, "softmax"),
}
_OFFICIAL_DEFAULT_GROUPS = 4
_MOVED = {
    _SI + "ENCODER.IN_FEATURES": _SI + "IN_FEATURES",
    _SI + "DECODER.NUM_CLASSES": "MODEL.ROI_HEADS.NUM_CLASSES",
}
# Key -> the only value(s) with the behaviour of this project's code; the key is then dropped.
_ONLY = {
    _SI + "ENCODER.NAME": ("InstanceContextEncoder",),
    _SI + "MATCHER.NAME": ("SparseInstMatcher",),
    _SI + "LOSS.NAME": ("SparseInstCriterion",),
    _SI + "LOSS.ITEMS": (("labels", "masks"), ["labels", "masks"]),
    _SI + "DATASET_MAPPER": ("SparseInstDatasetMapper",),
    "SOLVER.BACKBONE_MULTIPLIER": (1.0, 1),
    "SOLVER.AMSGRAD": (False,),
}
_DROPPED = (_SI + "DECODER.OUTPUT_IAM", _SI + "MAX_DETECTIONS")
_DROPPED_TREES = ("MODEL.PVT.", "MODEL.CSPNET.")


def _flatten(tree: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    flat: Dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _unflatten(flat: Dict[str, Any]) -> Dict[str, Any]:
    tree: Dict[str, Any] = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def _literal(value: Any) -> Any:
    # yacs keeps "(a, b)" from a yaml file as a string until it merges; compare the value.
    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value


def _translate_flat(flat: Dict[str, Any], alpha: float = 0.8) -> Tuple[Dict[str, Any], List[str]]:
    out = dict(flat)
    notes: List[str] = []
    for key in list(out):
        if key in _ONLY:
            value = _literal(out[key])
            if value not in _ONLY[key]:
                raise ValueError(f"{key} {value!r}: only {_ONLY[key][0]!r} is implemented "
                                 "here (the official code's other choice has no counterpart)")
            del out[key]
        elif key in _DROPPED or key.startswith(_DROPPED_TREES):
            del out[key]
        elif key in _MOVED:
            out[_MOVED[key]] = out.pop(key)
            notes.append(f"{key} -> {_MOVED[key]}")
    name_key = _SI + "DECODER.NAME"
    if name_key in out:
        name = out.pop(name_key)
        if name not in OFFICIAL_DECODERS:
            raise ValueError(f"{name_key} {name!r}: not one of {sorted(OFFICIAL_DECODERS)}")
        groups, activation = OFFICIAL_DECODERS[name]
        groups_key = _SI + "DECODER.GROUPS"
        out[groups_key] = groups or out.get(groups_key, _OFFICIAL_DEFAULT_GROUPS)
        out[_SI + "DECODER.IAM_ACTIVATION"] = activation
        notes.append(f"{name_key} {name} -> DECODER.GROUPS {out[groups_key]}, "
                     f"IAM_ACTIVATION {activation}")
    beta_key = _SI + "MATCHER.BETA"
    if beta_key in out:
        beta = float(_literal(out.pop(beta_key)))
        alpha = float(_literal(out.get(_SI + "MATCHER.ALPHA", alpha)))
        if abs(alpha + beta - 1.0) > 1e-9:
            raise ValueError(f"{beta_key} {beta}: the matching cost here uses the exponent "
                             f"1 - MATCHER.ALPHA = {1 - alpha:g}")
    return out, notes


def translate_official_keys(tree: Dict[str, Any], alpha: float = 0.8
                            ) -> Tuple[Dict[str, Any], List[str]]:
    """Rewrite a loaded config tree (nested dicts) from the official schema to this project's.

    Args:
        tree: e.g. ``CfgNode.load_yaml_with_base(path)``; a tree without official-only keys
            comes back unchanged (the same object).
        alpha: ``MATCHER.ALPHA`` in effect when the tree does not set it (to check ``BETA``).

    Returns:
        (the translated tree, one note per renamed key).

    Raises:
        ValueError: an official key whose value this project cannot reproduce (one line,
            naming the key).
    """
    flat = _flatten(tree)
    translated, notes = _translate_flat(flat, alpha)
    # Untouched trees come back as they are (with any empty nodes, which flattening drops).
    return (tree if translated == flat else _unflatten(translated)), notes


def translate_official_opts(opts: List[str], alpha: float = 0.8) -> Tuple[List[str], List[str]]:
    """:func:`translate_official_keys` for a ``KEY VALUE ...`` command-line list.

    Values stay strings for yacs to parse (a translated GROUPS comes back as a string too).

    Raises:
        ValueError: an odd-length list, or as :func:`translate_official_keys`.
    """
    if len(opts) % 2:
        raise ValueError(f"overrides must be KEY VALUE pairs, got {len(opts)} items")
    translated, notes = _translate_flat(dict(zip(opts[::2], opts[1::2])), alpha)
    return [str(x) for kv in translated.items() for x in kv], notes


def merge_config_file(cfg, path: str) -> List[str]:
    """``cfg.merge_from_file(path)``, also for the official SparseInst files; returns the notes.

    A file without official-only keys merges exactly as detectron2 merges it (including its
    upgrade of old config versions); an official one merges translated (it must be VERSION 2,
    as all official files are).

    Raises:
        ValueError: as :func:`translate_official_keys`, or an official file of another version;
            yacs' own errors as ``merge_from_file``.
    """
    loaded = cfg.load_yaml_with_base(path, allow_unsafe=False)
    tree, notes = translate_official_keys(loaded, cfg.MODEL.SPARSE_INST.MATCHER.ALPHA)
    if tree is loaded:
        cfg.merge_from_file(path, allow_unsafe=False)
        return notes
    if tree.get("VERSION", cfg.VERSION) != cfg.VERSION:
        raise ValueError(f"official SparseInst config of VERSION {tree['VERSION']}; "
                         f"only {cfg.VERSION} is translated")
    cfg.merge_from_other_cfg(type(cfg)(tree))
    return notes
