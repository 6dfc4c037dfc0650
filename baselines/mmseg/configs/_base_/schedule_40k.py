# The official 40k schedule (configs/_base_/schedules/schedule_40k.py, mmseg 0.28 = mmseg 1.x's
# values): SGD lr 0.01, momentum 0.9, weight decay 5e-4, poly decay (power 0.9) to 1e-4 over
# 40k iterations. No hooks (runtime.py's).
optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
max_iters = 40000
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
