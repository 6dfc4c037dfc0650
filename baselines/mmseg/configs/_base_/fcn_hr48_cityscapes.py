# mmseg's FCN HRNetV2-W48 on Cityscapes (its fcn_hr18 model and cityscapes dataset bases, W48
# widths as mmseg's and the authors' fcn_hr48 configs set them; 512x1024 crops, 2 images per GPU,
# ImageNet open-mmlab://msra/hrnetv2_w48, SyncBN) with OHEM, as every official baseline and CAC
# config has it, and mmseg 0.28's CE (dcl_mmseg.PixelMeanCrossEntropyLoss). The schedule is the
# leaf config's.
_base_ = [
    'mmseg::_base_/models/fcn_hr18.py', 'mmseg::_base_/datasets/cityscapes.py',
    './runtime.py', './cityscapes_class_weights.py', './cac.py', './hrnet_w48.py'
]
crop_size = (512, 1024)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained={{_base_.hrnet_w48_pretrained}},
    backbone={{_base_.hrnet_w48}},
    decode_head=dict(
        in_channels={{_base_.hrnet_w48_channels}},
        channels=720,  # the concatenation, as FCN HRNet keeps it
        sampler={{_base_.ohem}},
        loss_decode=dict(type='PixelMeanCrossEntropyLoss')))
