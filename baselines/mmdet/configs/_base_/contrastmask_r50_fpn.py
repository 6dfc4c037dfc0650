# ContrastMask R50-FPN (Wang et al., CVPR 2022) on mmdetection 3 through the dcl_mmdet plug-in,
# as the official code builds it (huiserwang/ContrastMask iconfig/contrastmask_res50_fpn_coco_*;
# shared/reference/contrastmask-cac.md part A): mmdet's Mask R-CNN R50-FPN with
# - a conv box head whose classifier gives class activation maps (CamConvBBoxHead: 4 shared
#   convs, 1 cls conv, 2 reg convs, average-pooled; no FC);
# - a class-agnostic FCN mask head fed by the CAM and the contrastive branch (ContrastMaskHead);
# - the contrastive branch on a second, detached 28x28 RoIAlign (contrast_roi_extractor), its
#   loss dcl_core's ContrastMaskLoss with the official settings (loss_contrastmask: lambda 0.1,
#   tau 0.3 / 0.7, sigma 0.3, 8-conv encoder, 3-layer projector, the code's quirks);
# - mask BCE only on base-class ground-truth-box RoIs (ContrastMaskRoIHead, mask_train_rois);
# - instances flagged is_novel by CocoPartialDataset(novel=...) and the partial pipeline.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
custom_imports = dict(imports=['dcl_mmdet'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        # ImageNet weights (torchvision's ResNet-50, what mmdet's 'torchvision://resnet50'
        # names and the official configs load), read from this path and never downloaded.
        init_cfg=dict(type='Pretrained', checkpoint='pretrained/resnet50-0676ba61.pth')),
    roi_head=dict(
        type='ContrastMaskRoIHead',
        mask_train_rois='base_gt',
        bbox_head=dict(type='CamConvBBoxHead', num_shared_convs=4, num_cls_convs=1,
                       num_reg_convs=2, conv_out_channels=256),
        contrast_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=28, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32]),
        mask_head=dict(
            type='ContrastMaskHead',
            class_agnostic=True,
            contrast_size=28,
            # dcl_core.ContrastMaskSettings; {} = the official values. loss_weight 0: no
            # contrastive branch (the official "w/o CL" ablation).
            loss_contrastmask=dict())))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPartialAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=[(1333, 640), (1333, 800)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackPartialInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
# Paths and classes: train.py's --train-data / predict.py's --val-data (COCO 2017 here).
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='CocoPartialDataset',
        # The partially-supervised split: 'voc' = the 20 VOC classes are novel (nonvoc -> voc,
        # the official configs' setting); 'nonvoc' = voc -> nonvoc (dcl_data.voc_split).
        novel='voc',
        data_root='datasets/coco/',
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoDataset',
        data_root='datasets/coco/',
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=test_pipeline))
# Predictions of every class are written; the workflow scores the novel ones
# (dcl_data.coco_subsets novel + analysis.subset: COCOeval with the novel catIds).
test_evaluator = dict(type='CocoResultsWriter', outfile='predictions_val.json', category_ids=[])
test_cfg = dict(type='TestLoop')

# 8 GPUs x 2 images, SGD lr 0.02, momentum 0.9, wd 1e-4, linear warm-up 500 iterations.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)
