# The embedded scale's detector body and schedule, shared by the embedded configs (RefineMask,
# ContrastMask; like baselines/detectron2/configs/embedded/mask_rcnn_R_18_FPN.yaml): trained
# from scratch on the small real dataset, on a CPU. No pretrained weights ship in any registry
# package, so: GroupNorm in backbone and FPN, no frozen stage (random-init frozen BN diverges),
# a 128-channel FPN and small images; an iteration-based schedule (`max_iters` x 2 images)
# with checkpoints for --resume. A config takes the body with
# `model = dict(**_base_.embedded_model, roi_head=...)` (its heads are its own) and the test
# pipeline and loaders below; paths and classes come from train.py / predict.py.
embedded_gn = dict(type='GN', num_groups=32, requires_grad=True)
embedded_model = dict(
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_cfg=embedded_gn,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128, norm_cfg=embedded_gn),
    rpn_head=dict(
        in_channels=128,
        feat_channels=128,
        # anchor sizes 16-256 px for 192-256 px images
        anchor_generator=dict(scales=[4])),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=600, max_per_img=300),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))

embedded_resize = dict(type='RandomChoiceResize', scales=[(341, 192), (341, 224), (341, 256)],
                       keep_ratio=True)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(341, 224), keep_ratio=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
embedded_train_loader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'))
embedded_train_data = dict(
    data_root='resources/embedded/',
    ann_file='annotations/instances_train.json',
    data_prefix=dict(img='train/'),
    filter_cfg=dict(filter_empty_gt=True, min_size=0))
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

# 80 iterations (was 200, then 150): the embedded default's 19 trainings fit its 30 minutes
# (RefineMask 1.3 s an iteration on the 2-core machine, 2026-11-30).
max_iters = 80
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=max_iters // 4),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75)], gamma=0.1),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
