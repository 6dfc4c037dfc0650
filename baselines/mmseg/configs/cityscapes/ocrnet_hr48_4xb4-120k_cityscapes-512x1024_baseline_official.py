# The authors' exact OCRNet baseline (configs/ocrnet/ocrnet_hr48_4x4_512x1024_120k_cityscapes_
# lr0.01_baseline.py, README 81.4 mIoU): 4 images per GPU (batch 16 on 4 GPUs, the README says
# "4x2"), twice its CAC config's batch; otherwise the matched baseline.
_base_ = './ocrnet_hr48_4xb2-120k_cityscapes-512x1024_baseline.py'
train_dataloader = dict(batch_size=4)
