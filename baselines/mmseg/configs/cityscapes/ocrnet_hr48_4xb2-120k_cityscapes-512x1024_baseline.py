# The OCRNet HRNetV2-W48 baseline matched to its CAC config: the authors' 120k baseline
# (configs/ocrnet/ocrnet_hr48_4x4_512x1024_120k_cityscapes_lr0.01_baseline.py; README 81.4 mIoU)
# at the CAC config's 2 images per GPU (batch 8, where the authors' baseline used 4 per GPU:
# ocrnet_hr48_4xb4-120k_cityscapes-512x1024_baseline_official.py). Auxiliary FCN CE x 0.4 and
# OCR CE x 1.0, each with the 19 class weights and OHEM; SGD 0.01 poly to 0 over 120k
# iterations on 512x1024 crops.
_base_ = [
    'mmseg::_base_/models/ocrnet_hr18.py', 'mmseg::_base_/datasets/cityscapes.py',
    '../_base_/runtime.py', '../_base_/schedule_120k.py',
    '../_base_/cityscapes_class_weights.py', '../_base_/cac.py', '../_base_/hrnet_w48.py'
]
crop_size = (512, 1024)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained={{_base_.hrnet_w48_pretrained}},
    backbone={{_base_.hrnet_w48}},
    decode_head=[
        # the auxiliary head: its soft regions feed the OCR head
        dict(type='FCNHead', in_channels={{_base_.hrnet_w48_channels}}, channels=720, input_transform='resize_concat',
             in_index=(0, 1, 2, 3), kernel_size=1, num_convs=1, concat_input=False,
             dropout_ratio=-1, num_classes=19, norm_cfg=norm_cfg, align_corners=False,
             sampler={{_base_.ohem}},
             loss_decode=dict(type='PixelMeanCrossEntropyLoss', use_sigmoid=False, loss_weight=0.4,
                              class_weight={{_base_.class_weight}})),
        dict(type='OCRHead', in_channels={{_base_.hrnet_w48_channels}}, channels=512, ocr_channels=256,
             input_transform='resize_concat', in_index=(0, 1, 2, 3), norm_cfg=norm_cfg,
             dropout_ratio=-1, num_classes=19, align_corners=False,
             sampler={{_base_.ohem}},
             loss_decode=dict(type='PixelMeanCrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
                              class_weight={{_base_.class_weight}})),
    ])
