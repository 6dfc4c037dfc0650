# HRNetV2-W48 over mmseg's HRNet-W18 model bases (the widths mmseg's and the authors' hr48
# configs set) and its ImageNet weights, as variables the W48 configs merge:
# model = dict(pretrained={{_base_.hrnet_w48_pretrained}}, backbone={{_base_.hrnet_w48}}).
hrnet_w48_pretrained = 'open-mmlab://msra/hrnetv2_w48'
hrnet_w48 = dict(
    extra=dict(
        stage2=dict(num_channels=(48, 96)),
        stage3=dict(num_channels=(48, 96, 192)),
        stage4=dict(num_channels=(48, 96, 192, 384))))
# The 4 branches resized and concatenated: the heads' input.
hrnet_w48_channels = [48, 96, 192, 384]
