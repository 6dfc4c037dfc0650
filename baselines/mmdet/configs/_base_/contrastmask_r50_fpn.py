# ContrastMask R50-FPN (Wang et al., CVPR 2022) on mmdetection 3 through the dcl_mmdet plug-in,
# as the official code builds it (huiserwang/ContrastMask iconfig/contrastmask_res50_fpn_coco_*;
# shared/reference/contrastmask-cac.md part A): mmdet's Mask R-CNN R50-FPN with
# - a conv box head whose classifier gives class activation maps (CamConvBBoxHead: 4 shared
#   convs, 1 cls conv, 2 reg convs, average-pooled; no FC);
# - a class-agnostic FCN mask head fed by the CAM and the contrastive branch (ContrastMaskHead);
# - the contrastive branch on a second, detached 28x28 RoIAlign (contrast_roi_extractor), its
#   loss dcl_core's ContrastMaskLoss with the official settings (loss_contrastmask: lambda 0.1,
#   tau 0.3 / 0.7, sigma 0.3, 8-conv encoder, 3-layer projector, the code's quirks);
# - mask BCE only on base-class ground-truth-box RoIs (ContrastMaskRoIHead, mask_train_rois).
# Its data need instances flagged is_novel: CocoPartialDataset(novel=...) with
# LoadPartialAnnotations and PackPartialInputs (coco_partial.py; the embedded config).
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
