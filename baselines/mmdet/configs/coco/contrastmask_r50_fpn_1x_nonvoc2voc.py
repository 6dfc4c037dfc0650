# ContrastMask R50-FPN 1x, nonvoc -> voc (the official contrastmask_res50_fpn_coco_1x_nonvoc2voc):
# masks of the 60 non-VOC classes, scored on the 20 VOC classes. 12 epochs, lr x0.1 after
# epochs 8 and 11; the contrastive weight ramps 0.25, 0.25, 0.5, 0.75, then 1 per epoch.
# Run: torchrun --nproc_per_node 8 baselines/mmdet/train.py THIS_FILE --launcher pytorch ...
_base_ = ['../_base_/contrastmask_r50_fpn.py', '../_base_/coco_partial.py',
          '../_base_/runtime.py']

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=12)
custom_hooks = _base_.custom_hooks + [dict(type='ContrastRampHook', period=1, by_epoch=True)]
