# The 19 Cityscapes CE class weights (trainId order) of every official CAC Cityscapes config and
# of the authors' 120k baselines (CVIU-CSU/Confidence-Aware-Contrastive-Loss, configs/cac_hrnet,
# configs/cac_ocrnet, configs/hrnet/*120k*, configs/ocrnet); the official 40k baseline has none.
# With them the CE is dcl_mmseg.PixelMeanCrossEntropyLoss (mmseg 0.28's; mmseg 1.2.2's
# CrossEntropyLoss fails on ignored pixels when given class weights).
class_weight = [0.8373, 0.9180, 0.8660, 1.0345, 1.0166, 0.9969, 0.9754, 1.0489, 0.8786, 1.0023,
                0.9539, 0.9843, 1.1116, 0.9037, 1.0865, 1.0955, 1.0865, 1.1529, 1.0507]
# OHEM of the same configs, the official 40k baseline's included.
ohem = dict(type='OHEMPixelSampler', thresh=0.9, min_kept=131072)
