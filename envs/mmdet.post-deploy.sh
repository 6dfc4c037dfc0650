#!/usr/bin/env bash
# Snakemake runs this inside the new envs/mmdet.yaml environment (--sdm conda), from the
# working directory: envs/install_mmdet.py builds mmcv 2.1.0 from its PyPI sdist with C++20
# (torch 2.14's headers reject the C++17 its setup.py hard-codes) and installs it, mmengine,
# mmdet 3.3.0, mmsegmentation 1.2.2 and the pins of envs/requirements-mmdet.txt; then the project's packages
# (editable, from the checkout: $DCL_REPO, or the working directory). About 10 min on 2 cores
# without CUDA; CUDA ops are built when nvcc is present (FORCE_CUDA=1, set below). The built
# wheel is cached under the checkout's .cache/wheels for the next environment.
set -euo pipefail
REPO=${DCL_REPO:-$PWD}
if [[ ! -f $REPO/pyproject.toml || ! -d $REPO/dcl_core ]]; then
    echo "mmdet.post-deploy.sh: $REPO is not the DCL reproduction checkout; export DCL_REPO=/path/to/it" >&2
    exit 1
fi
if command -v nvcc >/dev/null; then export FORCE_CUDA=1; fi
MAX_JOBS=${MAX_JOBS:-4} python "$REPO/envs/install_mmdet.py" --cache "$REPO/.cache/wheels"
python -m pip install --no-deps -e "$REPO" -e "$REPO/baselines/mmdet" -e "$REPO/baselines/mmseg"
python -c "from mmcv.ops import RoIAlign, nms; import mmdet, mmseg, dcl_core, dcl_data, dcl_mmdet, dcl_mmseg"
