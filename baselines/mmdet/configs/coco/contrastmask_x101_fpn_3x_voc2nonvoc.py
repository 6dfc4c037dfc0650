# ContrastMask ResNeXt-101-FPN 3x, voc -> nonvoc (the official README's model table, a paper-scale
# target: 35.0 voc -> nonvoc, 39.8 nonvoc -> voc novel mask AP). The README names
# "ResNeXt-101" without its variant and ships no config: the 32x8d of torchvision's ImageNet
# weights is our choice (resnext101_32x8d, IMAGENET1K_V1), the rest as the R-50 3x config.
_base_ = './contrastmask_r50_fpn_3x_voc2nonvoc.py'

model = dict(
    backbone=dict(
        type='ResNeXt', depth=101, groups=32, base_width=8,
        init_cfg=dict(type='Pretrained', checkpoint='pretrained/resnext101_32x8d-8ba56ff5.pth')))
