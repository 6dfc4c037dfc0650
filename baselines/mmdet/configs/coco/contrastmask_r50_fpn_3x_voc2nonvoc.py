# ContrastMask R50-FPN 3x, voc -> nonvoc (masks of the 20 VOC classes, the other 60 scored).
_base_ = './contrastmask_r50_fpn_3x_nonvoc2voc.py'

train_dataloader = dict(dataset=dict(dataset=dict(novel='nonvoc')))
