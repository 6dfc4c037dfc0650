# CAC, official fcn_hr48_4x2_512x1024_40k_cityscapes_lr0.01_0.4_0.1_1.5 (README 81.6 mIoU val):
# the matched 40k baseline with the CAC head, loss (0.4, tau 0.1, weight branch CE x 1.5) and
# 5000-iteration warm-up.
_base_ = './fcn_hr48_4xb2-40k_cityscapes-512x1024_baseline.py'
model = dict(decode_head={{_base_.cac_fcn_head}})
custom_hooks = {{_base_.cac_hooks}}
