# The authors' 120k HRNetV2-W48 baseline (configs/hrnet/fcn_hr48_512x1024_4x2_120k_cityscapes_
# lr0.01_baseline.py; README 80.8 mIoU val): CE class weights and OHEM, the 120k schedule. It
# matches its CAC config except for the loss, so the authors' and the matched baseline are this
# one file.
_base_ = ['../_base_/fcn_hr48_cityscapes.py', '../_base_/schedule_120k.py']
model = dict(decode_head=dict(loss_decode=dict(class_weight={{_base_.class_weight}})))
