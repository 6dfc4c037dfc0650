# fcn_hr18s_embedded_baseline.py + CAC with the official HRNet-Cityscapes settings (loss 0.4,
# tau 0.1, weight branch CE x 1.5, at most 1024 anchors per batch and 100 per image-class), its
# warm-up scaled with the schedule (official 5000 of 40000 iterations: 1/8 of max_iters).
_base_ = './fcn_hr18s_embedded_baseline.py'
model = dict(decode_head={{_base_.cac_fcn_head}})
custom_hooks = [dict(type='CACWarmupHook', start_iter=_base_.max_iters // 8)]
