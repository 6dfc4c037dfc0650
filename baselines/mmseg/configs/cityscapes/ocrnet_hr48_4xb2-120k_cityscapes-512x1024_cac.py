# CAC, official ocrnet_hr48_4x2_512x1024_120k_cityscapes_lr0.01_0.6_0.1_1.5 (README 82.3 mIoU
# val): the matched OCRNet baseline whose OCR head is the CAC head (loss 0.6, tau 0.1, weight
# branch = a second OCR head, CE x 1.5) with the 5000-iteration warm-up. mmengine replaces a
# list whole, so both heads are restated; only the OCR head's type and CAC keys differ.
_base_ = './ocrnet_hr48_4xb2-120k_cityscapes-512x1024_baseline.py'
model = dict(decode_head=[
    dict(type='FCNHead', in_channels={{_base_.hrnet_w48_channels}}, channels=720, input_transform='resize_concat',
         in_index=(0, 1, 2, 3), kernel_size=1, num_convs=1, concat_input=False,
         dropout_ratio=-1, num_classes=19, norm_cfg={{_base_.norm_cfg}}, align_corners=False,
         sampler={{_base_.ohem}},
         loss_decode=dict(type='PixelMeanCrossEntropyLoss', use_sigmoid=False, loss_weight=0.4,
                          class_weight={{_base_.class_weight}})),
    dict(type='CACOCRHead', in_channels={{_base_.hrnet_w48_channels}}, channels=512, ocr_channels=256,
         input_transform='resize_concat', in_index=(0, 1, 2, 3), norm_cfg={{_base_.norm_cfg}},
         dropout_ratio=-1, num_classes=19, align_corners=False,
         sampler={{_base_.ohem}},
         loss_decode=dict(type='PixelMeanCrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
                          class_weight={{_base_.class_weight}}),
         proj_channels=256, weight_branch_factor=1.5, loss_cac={{_base_.cac_loss_ocr}}),
])
custom_hooks = {{_base_.cac_hooks}}
