# CAC, official fcn_hr48_4x2_512x1024_120k_cityscapes_lr0.01_0.4_0.1_1.5 (README 82.2 mIoU val).
_base_ = './fcn_hr48_4xb2-120k_cityscapes-512x1024_baseline.py'
model = dict(decode_head={{_base_.cac_fcn_head}})
custom_hooks = {{_base_.cac_hooks}}
