# Runtime shared by the dcl_mmdet configs: no evaluation while training (the workflow scores
# the predictions that predict.py writes), train_cost.json through TrainingCostHook, the
# losses in train_metrics.json through TrainMetricsHook (as detectron2 runs), seed 0.
default_scope = 'mmdet'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # CheckpointHook writing atomically and durably (dcl_mmdet.checkpoint).
    checkpoint=dict(type='DurableCheckpointHook', interval=1, save_last=True, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = [dict(type='TrainingCostHook', warmup=5),
                dict(type='TrainMetricsHook', interval=20)]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
randomness = dict(seed=0)
load_from = None
resume = False

val_dataloader = None
val_evaluator = None
val_cfg = None
