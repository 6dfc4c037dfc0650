# The authors' exact 40k HRNetV2-W48 baseline (configs/hrnet/fcn_hr48_512x1024_4x2_40k_
# cityscapes_lr0.01_baseline.py; README 79.5 mIoU val): 4 GPUs x 2 images, 512x1024 crops, the
# 40k schedule, OHEM but WITHOUT the CE class weights every CAC config has (a confound of
# 79.5 -> 81.6; the matched baseline is fcn_hr48_4xb2-40k_cityscapes-512x1024_baseline.py).
_base_ = ['../_base_/fcn_hr48_cityscapes.py', '../_base_/schedule_40k.py']
