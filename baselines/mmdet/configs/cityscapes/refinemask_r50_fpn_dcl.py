# RefineMask R50-FPN + dense contrastive loss on Cityscapes (paper Table 1, RefineMask row).
# lambda = 1.0: the DCL authors' README says the paper used 1.0; their released code sets 1.4
# (`train.py --loss dcl loss_weight=1.4` reproduces that).
# K = 32, tau = 0.07, learnable similarity, at most 100 RoIs, on the first semantic-fusion
# stage's 28x28 output (128 channels).
_base_ = './refinemask_r50_fpn.py'

model = dict(
    roi_head=dict(
        mask_head=dict(
            loss_contrast=dict(loss_weight=1.0, num_samples=32, temperature=0.07))))
