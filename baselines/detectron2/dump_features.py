#!/usr/bin/env python
"""Dump mask-head features at foreground and background pixels (paper Figure 4).

The logic, flags and output format: :mod:`dcl_detectron2.features`. E.g.::

    E=resources/embedded
    python baselines/detectron2/dump_features.py --config-file RUN/config.yaml \\
        --dataset embedded_train=$E/annotations/instances_train.json:$E/train \\
        --dataset embedded_val=$E/annotations/instances_val.json:$E/val \\
        --out RUN/features_val.npz MODEL.WEIGHTS RUN/model_final.pth
"""

from dcl_detectron2.features import main

if __name__ == "__main__":
    main()
