# RefineMask R50-FPN on Cityscapes fine (baseline of the paper's RefineMask + DCL row).
# Schedule per the RefineMask authors' Cityscapes config (RefineMask paper, Table 9:
# 64 epochs): the train set repeated 8 times, 8 epochs (= 64 passes), SGD lr 0.01 for
# 8 GPUs x 1 image, momentum 0.9, weight decay 1e-4, linear warm-up 500 iterations, lr x0.1
# after epoch 7 (= pass 56), gradient clipping at 35; multi-scale training (2048, 800-1024),
# test at (2048, 1024). ImageNet R-50 (path in the base config); seed 0 (DCL authors).
# Images per GPU: 1, as the DCL authors' RefineMask config (8 GPUs x 1). The official RefineMask
# Cityscapes config (zhanggang001/RefineMask configs/refinemask/cityscapes/r50-refinemask.py,
# samples_per_gpu=2) trains 8 x 2 at the same lr 0.01; its README's 37.6 AP, the paper's
# baseline number, presumably comes from that run: `--cfg-options train_dataloader.batch_size=2`.
# Mask head: the authors' BAR boundary rule (RefineMaskHead's default boundary_rule='fraction';
# 'distance' = the paper's wording). Official checkpoints: tools/convert_official_refinemask.py.
# Run: torchrun --nproc_per_node 8 baselines/mmdet/train.py THIS_FILE --launcher pytorch ...
_base_ = ['../_base_/refinemask_r50_fpn.py', '../_base_/runtime.py']

model = dict(
    roi_head=dict(
        bbox_head=dict(
            num_classes=8,
            # The RefineMask authors' Cityscapes config weighs the box losses x2.
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0),
            loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=2.0)),
        mask_head=dict(num_classes=8)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=[(2048, 800), (2048, 1024)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]

# Paths: train.py / predict.py replace ann_file, data_prefix and the classes with their
# --train-data / --val-data (COCO-format JSON as the project's cityscapes_coco_json writes it).
train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='RepeatDataset',
        times=8,
        dataset=dict(
            type='CocoDataset',
            data_root='datasets/cityscapes/',
            ann_file='annotations/instancesonly_filtered_gtFine_train.json',
            data_prefix=dict(img='leftImg8bit/train/'),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=train_pipeline)))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoDataset',
        data_root='datasets/cityscapes/',
        ann_file='annotations/instancesonly_filtered_gtFine_val.json',
        data_prefix=dict(img='leftImg8bit/val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_evaluator = dict(type='CocoResultsWriter', outfile='predictions_val.json', category_ids=[])
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=8, by_epoch=True, milestones=[7], gamma=0.1),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=8, val_interval=8)
auto_scale_lr = dict(enable=False, base_batch_size=8)
