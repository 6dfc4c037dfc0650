# The official 120k schedule (the 120k configs: schedule_120k.py with lr_config min_lr=0): the
# 40k schedule's optimiser, poly decay to 0 over 120k iterations.
_base_ = './schedule_40k.py'
max_iters = 120000
param_scheduler = [dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
