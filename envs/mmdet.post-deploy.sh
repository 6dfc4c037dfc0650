#!/usr/bin/env bash
# Snakemake runs this inside the new envs/mmdet.yaml environment (--sdm conda), from the
# working directory: builds mmcv 2.1.0 from its PyPI sdist with C++20 (torch 2.14's headers
# reject the C++17 its setup.py hard-codes), then installs mmdet 3.3.0 and the project's packages
# (editable, from the checkout: $DCL_REPO, or the working directory). About 10 min on 2 cores
# without CUDA; CUDA ops are built when nvcc is present (FORCE_CUDA=1, set below).
set -euo pipefail
REPO=${DCL_REPO:-$PWD}
SHA256=d387bcab66b467479b6660310e23746cfc79c6e57acf04094680adb499a5cd3f   # mmcv-2.1.0.tar.gz
if [[ ! -f $REPO/pyproject.toml || ! -d $REPO/dcl_core ]]; then
    echo "mmdet.post-deploy.sh: $REPO is not the DCL reproduction checkout; export DCL_REPO=/path/to/it" >&2
    exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python -m pip download --no-deps --no-binary :all: --no-build-isolation mmcv==2.1.0 -d "$work"
echo "$SHA256  $work/mmcv-2.1.0.tar.gz" | sha256sum -c - >/dev/null \
    || { echo "mmdet.post-deploy.sh: mmcv-2.1.0.tar.gz does not have the pinned sha256" >&2; exit 1; }
tar -xzf "$work/mmcv-2.1.0.tar.gz" -C "$work"
sed -i 's/-std=c++17/-std=c++20/g' "$work/mmcv-2.1.0/setup.py"
[[ $(grep -c -- '-std=c++20' "$work/mmcv-2.1.0/setup.py") -eq 3 ]] \
    || { echo "mmdet.post-deploy.sh: mmcv setup.py is not the one this patch expects" >&2; exit 1; }
if command -v nvcc >/dev/null; then export FORCE_CUDA=1; fi
MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-4} python -m pip install --no-build-isolation "$work/mmcv-2.1.0"
python -m pip install mmdet==3.3.0 "torch==2.14.1" "torchvision==0.29.1"
python -m pip install --no-deps -e "$REPO"
python -c "from mmcv.ops import RoIAlign, nms; import mmdet, dcl_core, dcl_data"
