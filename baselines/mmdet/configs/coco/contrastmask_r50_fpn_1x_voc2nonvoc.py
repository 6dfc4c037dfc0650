# ContrastMask R50-FPN 1x, voc -> nonvoc: masks of the 20 VOC classes, scored on the other 60
# (the official README: swap the novel set of the nonvoc -> voc config).
_base_ = './contrastmask_r50_fpn_1x_nonvoc2voc.py'

train_dataloader = dict(dataset=dict(novel='nonvoc'))
