# RefineMask R50-FPN (Zhang et al., CVPR 2021) on mmdetection 3 through the dcl_mmdet plug-in:
# mmdetection's Mask R-CNN R50-FPN (backbone, RPN, box branch, train/test settings) with
# RefineRoIHead + RefineMaskHead for masks. The dense contrastive loss is off here
# (loss_weight 0 builds nothing: the exact baseline); the *_dcl configs or
# `train.py --loss dcl loss_weight=1.0` turn it on (other settings: dcl_core's defaults).
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
custom_imports = dict(imports=['dcl_mmdet'], allow_failed_imports=False)

# RefineMask's semantic head is trained on the union of the instance masks over the padded
# image: it needs the inherited data_preprocessor's pad_mask=True.
model = dict(
    backbone=dict(
        # ImageNet weights (torchvision's ResNet-50, what mmdet's 'torchvision://resnet50'
        # names), read from this path and never downloaded: place the file there first.
        init_cfg=dict(type='Pretrained', checkpoint='pretrained/resnet50-0676ba61.pth')),
    roi_head=dict(
        type='RefineRoIHead',
        mask_head=dict(
            _delete_=True,
            type='RefineMaskHead',
            num_classes=80,
            in_channels=256,
            instance_channels=256,
            num_convs_instance=2,
            semantic_channels=256,
            num_convs_semantic=4,
            stage_sizes=(14, 28, 56, 112),
            dilations=(1, 3, 5),
            semantic_stride=4,
            mask_use_sigmoid=True,
            class_agnostic_final=False,
            stage_loss_weights=(0.25, 0.5, 0.75, 1.0),
            semantic_loss_weight=1.0,
            boundary_width=2,
            start_stage=1,
            test_boundary_width=1,
            # Dense contrastive loss on the first fusion stage's 28x28 output: lambda 0 = not
            # built. Other keys: dcl_core.DCLSettings (their defaults apply).
            loss_contrast=dict(loss_weight=0.0))))
