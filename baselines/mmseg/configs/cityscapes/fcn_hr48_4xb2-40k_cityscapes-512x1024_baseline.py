# The 40k baseline matched to the CAC config (fcn_hr48_4xb2-40k_cityscapes-512x1024_cac.py):
# the authors' 40k baseline plus the 19 CE class weights, so that CAC's config differs from it by
# the loss alone (CAC head, loss and warm-up).
_base_ = './fcn_hr48_4xb2-40k_cityscapes-512x1024_baseline_official.py'
model = dict(decode_head=dict(loss_decode=dict(class_weight={{_base_.class_weight}})))
