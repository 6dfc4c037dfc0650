# Embedded scale: RefineMask R18-FPN trained from scratch on the small real dataset, on a CPU
# (like baselines/detectron2/configs/embedded/mask_rcnn_R_18_FPN.yaml). No pretrained weights
# ship in any registry package, so: GroupNorm in backbone, FPN and heads, no frozen stage
# (random-init frozen BN diverges), narrow layers (128-channel FPN; a 64-channel mask head,
# so stages of 64 -> 32 -> 16 -> 8 channels and a 32-channel first fusion stage, where DCL
# applies) and small images; an iteration-based schedule of about 2 minutes on 2 cores
# (200 iterations x 2 images) with checkpoints for --resume.
_base_ = ['../_base_/refinemask_r50_fpn.py', '../_base_/runtime.py']

gn = dict(type='GN', num_groups=32, requires_grad=True)
gn_head = dict(type='GN', num_groups=16, requires_grad=True)  # 16-channel stage convs
model = dict(
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_cfg=gn,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128, norm_cfg=gn),
    rpn_head=dict(
        in_channels=128,
        feat_channels=128,
        # anchor sizes 16-256 px for 192-256 px images
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        bbox_head=dict(in_channels=128, fc_out_channels=512, num_classes=1),
        mask_roi_extractor=dict(out_channels=128),
        mask_head=dict(
            num_classes=1,  # train.py sets it from the dataset
            in_channels=128,
            instance_channels=64,
            semantic_channels=64,
            norm_cfg=gn_head)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=600, max_per_img=300),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    # The embedded set mixes polygons and RLE; both become bit masks.
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomChoiceResize', scales=[(341, 192), (341, 224), (341, 256)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(341, 224), keep_ratio=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]

# Paths and classes come from train.py's --train-data / predict.py's --val-data.
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='CocoDataset',
        data_root='resources/embedded/',
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoDataset',
        data_root='resources/embedded/',
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_evaluator = dict(type='CocoResultsWriter', outfile='predictions_val.json', category_ids=[])
test_cfg = dict(type='TestLoop')

max_iters = 200
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75)], gamma=0.1),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=50, save_last=True,
                    max_keep_ckpts=2))
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=False)
