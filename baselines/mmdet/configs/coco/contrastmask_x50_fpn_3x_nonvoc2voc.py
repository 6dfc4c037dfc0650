# ContrastMask ResNeXt-50-FPN 3x, nonvoc -> voc (the official README's model table, a paper-scale
# target: 33.4 voc -> nonvoc, 37.6 nonvoc -> voc novel mask AP). The README names "ResNeXt-50"
# without its variant and ships no config: the 32x4d of torchvision's ImageNet weights is our
# choice (resnext50_32x4d, IMAGENET1K_V1), the rest as the R-50 3x config.
_base_ = './contrastmask_r50_fpn_3x_nonvoc2voc.py'

model = dict(
    backbone=dict(
        type='ResNeXt', depth=50, groups=32, base_width=4,
        init_cfg=dict(type='Pretrained', checkpoint='pretrained/resnext50_32x4d-7cdf4587.pth')))
