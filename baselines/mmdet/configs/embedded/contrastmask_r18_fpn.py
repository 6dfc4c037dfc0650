# Embedded scale: ContrastMask R18-FPN, voc -> nonvoc, trained from scratch on the small real
# dataset on a CPU, on the shared embedded body and schedule (_base_/embedded_r18_fpn.py: GN,
# R-18, 128-channel FPN, small images, 2 images a step, checkpoints for --resume), with a longer
# schedule of its own (below).
# Heads narrowed to fit the CPU budget: 64-channel box convs, a 64-channel mask head, a
# 32-channel contrastive encoder/projector (loss_contrastmask embed_channels; its 8 convs and
# every other setting official) and 32 sampled RoIs per image (the encoder and the non-local
# enhancement run on every positive RoI: they dominate the step's cost).
# Split: the embedded dataset's VOC classes (person, bottle, chair, dining table, sofa, bus,
# car) have masks; the non-VOC ones (truck, the ARC2017 items, nucleus) are novel, so the
# scored novel class on val is nucleus, learnt from boxes and CAMs only (dcl_data.voc_split).
# The schedule stands for 12 epochs of 1x: the loss weight ramps per max_iters // 12 iterations.
_base_ = ['../_base_/contrastmask_r50_fpn.py', '../_base_/runtime.py',
          '../_base_/embedded_r18_fpn.py']

gn_head = dict(type='GN', num_groups=16, requires_grad=True)
model = dict(
    **_base_.embedded_model,
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
            loss_contrastmask=dict(embed_channels=32))))
model['train_cfg']['rcnn']['sampler']['num'] = 32

train_pipeline = [
    dict(type='LoadImageFromFile'),
    # The embedded set mixes polygons and RLE; both become bit masks.
    dict(type='LoadPartialAnnotations', with_bbox=True, with_mask=True),
    _base_.embedded_resize,
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackPartialInputs'),
]
train_dataloader = dict(
    **_base_.embedded_train_loader,
    dataset=dict(type='CocoPartialDataset', novel='nonvoc', pipeline=train_pipeline,
                 **_base_.embedded_train_data))
# 200 iterations, not the shared 80: a novel class is learnt from boxes and CAMs alone, which
# takes the steps (nucleus mask AP on val, one run each: 0.1 at 80 iterations, 1.1 at 150,
# 2.7 at 200, AP50 13.0).
max_iters = 200
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=max_iters // 4),
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
