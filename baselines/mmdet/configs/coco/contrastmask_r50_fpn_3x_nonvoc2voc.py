# ContrastMask R50-FPN 3x, nonvoc -> voc, the official schedule: the train set repeated 3 times
# (RepeatDataset), 12 runner epochs (= 36 COCO epochs), lr x0.1 after runner epochs 9 and 11
# (= COCO epochs 27 and 33), warm-up 500 iterations; the contrastive weight ramps per runner
# epoch (0.25, 0.25, 0.5, 0.75, then 1: over 12 COCO epochs), as the official hook does.
_base_ = './contrastmask_r50_fpn_1x_nonvoc2voc.py'

train_dataloader = dict(dataset=dict(_delete_=True, type='RepeatDataset', times=3,
                                     dataset=_base_.train_dataloader.dataset))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[9, 11], gamma=0.1),
]
