"""SparseInst (Cheng et al., CVPR 2022) for detectron2, with the dense contrastive loss.

Importing this package registers the ``SparseInst`` meta-architecture. Call
:func:`add_sparseinst_config` on a config before merging a file with ``MODEL.SPARSE_INST``
keys; DCL is on when ``MODEL.SPARSE_INST.CONTRAST_LOSS.LOSS_WEIGHT`` > 0 (DCL paper Sec. 5.2).
SparseInst trains with AdamW (``SOLVER.OPTIMIZER ADAMW``, which ``train_net.py``'s trainer
implements).
"""

from .config import add_sparseinst_config
from .meta_arch import SparseInst

__all__ = ["add_sparseinst_config", "SparseInst"]
