#!/usr/bin/env bash
# Snakemake runs this inside the new envs/detectron2.yaml environment (--sdm conda), from the
# working directory. It installs detectron2 (an official source build already in the
# environment is kept; otherwise envs/install_detectron2.py installs the v0.5 Python package
# from PyPI's detectron2-cdo sdist, whose Mask R-CNN ops come from torchvision, CUDA included)
# and the project's packages as editable installs of the checkout.
# The checkout is $DCL_REPO, or the working directory when snakemake runs in the repository.
set -euo pipefail
REPO=${DCL_REPO:-$PWD}
if [[ ! -f $REPO/envs/install_detectron2.py || ! -f $REPO/baselines/detectron2/pyproject.toml ]]; then
    echo "detectron2.post-deploy.sh: $REPO is not the DCL reproduction checkout; export DCL_REPO=/path/to/it" >&2
    exit 1
fi
python "$REPO/envs/install_detectron2.py" --cache "$REPO/.cache/sdists"
python -m pip install --no-deps -e "$REPO" -e "$REPO/baselines/detectron2"
python -c "import detectron2, dcl_core, dcl_data, dcl_detectron2, cityscapesscripts"
