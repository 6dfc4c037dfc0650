# Embedded scale: HRNetV2-W18-Small (mmseg's fcn_hr18s widths and depths) with the FCN head,
# trained from scratch on a CPU on the embedded semantic set (dcl_data/semantic_labels.py:
# background + the embedded instance set's categories). No ImageNet weights ship in any registry
# package, so: no pretrained init, BN (one process) instead of SyncBN, small crops (256x256) and
# a schedule of about 1 minute on 2 cores; the CE, OHEM-free, is the same for baseline and CAC
# (fcn_hr18s_embedded_cac.py adds only CAC). train.py sets the paths and num_classes.
_base_ = [
    'mmseg::_base_/models/fcn_hr18.py', '../_base_/runtime.py', '../_base_/schedule_40k.py',
    '../_base_/cac.py'
]
norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (256, 256)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(
        norm_cfg=norm_cfg,
        extra=dict(
            stage1=dict(num_blocks=(2, )),
            stage2=dict(num_blocks=(2, 2)),
            stage3=dict(num_modules=3, num_blocks=(2, 2, 2)),
            stage4=dict(num_modules=2, num_blocks=(2, 2, 2, 2)))),
    decode_head=dict(norm_cfg=norm_cfg, num_classes=18))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(512, 256), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 256), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
# Paths and classes: train.py's / predict.py's --data (a dcl_data.semantic_labels folder).
dataset = dict(type='BaseSegDataset', data_root='resources/embedded_semseg', img_suffix='.png',
               seg_map_suffix='.png')
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(dataset, data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
                 pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(dataset, data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
                 pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetricWriter', outfile='metrics_miou.json')

# 80 iterations (was 120): the embedded default's 19 trainings fit its 30 minutes.
max_iters = 80
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters + 1)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=40))
log_processor = dict(window_size=10)
