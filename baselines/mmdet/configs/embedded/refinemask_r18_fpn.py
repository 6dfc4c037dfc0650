# Embedded scale: RefineMask R18-FPN trained from scratch on the small real dataset, on a CPU,
# on the shared embedded body and schedule (_base_/embedded_r18_fpn.py: GN, R-18, 128-channel
# FPN, small images, `max_iters` x 2 images, checkpoints for --resume). Narrow heads: a
# 64-channel mask head, so stages of 64 -> 32 -> 16 -> 8 channels and a 32-channel first fusion
# stage, where DCL applies.
_base_ = ['../_base_/refinemask_r50_fpn.py', '../_base_/runtime.py',
          '../_base_/embedded_r18_fpn.py']

gn_head = dict(type='GN', num_groups=16, requires_grad=True)  # 16-channel stage convs
model = dict(
    **_base_.embedded_model,
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        bbox_head=dict(in_channels=128, fc_out_channels=512, num_classes=1),
        mask_roi_extractor=dict(out_channels=128),
        mask_head=dict(
            num_classes=1,  # train.py sets it from the dataset
            in_channels=128,
            instance_channels=64,
            semantic_channels=64,
            norm_cfg=gn_head)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    # The embedded set mixes polygons and RLE; both become bit masks.
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    _base_.embedded_resize,
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    **_base_.embedded_train_loader,
    dataset=dict(type='CocoDataset', pipeline=train_pipeline, **_base_.embedded_train_data))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=50, save_last=True,
                    max_keep_ckpts=2))
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=False)
