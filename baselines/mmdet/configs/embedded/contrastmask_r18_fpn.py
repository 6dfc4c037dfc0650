# Embedded scale: ContrastMask R18-FPN, voc -> nonvoc, trained from scratch on the small real
# dataset on a CPU, with the body of the embedded RefineMask config (refinemask_r18_fpn.py: GN,
# no frozen stage, 128-channel FPN, small images, 200 iterations x 2 images, checkpoints for
# --resume). Heads narrowed to fit ~2 CPU minutes: 64-channel box convs, a 64-channel mask head,
# a 32-channel contrastive encoder/projector (loss_contrastmask embed_channels; its 8 convs and
# every other setting official) and 32 sampled RoIs per image (the encoder and the non-local
# enhancement run on every positive RoI: they dominate the step's cost).
# Split: the embedded dataset's VOC classes (person, bottle, chair, dining table, sofa, bus,
# car) have masks; the non-VOC ones (truck, the ARC2017 items, nucleus) are novel, so the
# scored novel class on val is nucleus, learnt from boxes and CAMs only (dcl_data.voc_split).
# The schedule stands for 12 epochs of 1x: the loss weight ramps per max_iters // 12 iterations.
_base_ = ['../_base_/contrastmask_r50_fpn.py', '../_base_/runtime.py']

gn = dict(type='GN', num_groups=32, requires_grad=True)
gn_head = dict(type='GN', num_groups=16, requires_grad=True)
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
        bbox_head=dict(in_channels=128, conv_out_channels=64, norm_cfg=gn_head, num_classes=1),
        contrast_roi_extractor=dict(out_channels=128),
        mask_roi_extractor=dict(out_channels=128),
        mask_head=dict(
            num_classes=1,  # train.py sets it from the dataset
            in_channels=128,
            conv_out_channels=64,
            norm_cfg=gn_head,
            loss_contrastmask=dict(embed_channels=32))),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=600, max_per_img=300),
        rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    # The embedded set mixes polygons and RLE; both become bit masks.
    dict(type='LoadPartialAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomChoiceResize', scales=[(341, 192), (341, 224), (341, 256)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackPartialInputs'),
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
    dataset=dict(
        novel='nonvoc',
        data_root='resources/embedded/',
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=train_pipeline))
test_dataloader = dict(
    num_workers=0,
    dataset=dict(
        data_root='resources/embedded/',
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))

max_iters = 200
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75)], gamma=0.1),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
custom_hooks = _base_.custom_hooks + [
    dict(type='ContrastRampHook', period=max_iters // 12, by_epoch=False)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=50, save_last=True,
                    max_keep_ckpts=2))
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=False)
