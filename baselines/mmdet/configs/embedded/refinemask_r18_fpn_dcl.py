# refinemask_r18_fpn.py + the dense contrastive loss (lambda 1.0, the paper's RefineMask
# value; K = 32, tau = 0.07) on the first fusion stage's 28x28 output.
_base_ = './refinemask_r18_fpn.py'

model = dict(roi_head=dict(mask_head=dict(loss_contrast=dict(loss_weight=1.0))))
