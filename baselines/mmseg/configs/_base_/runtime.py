# Runtime shared by the dcl_mmseg configs: mmseg's default_runtime plus the plug-ins; checkpoints
# written atomically (dcl_mmdet's DurableCheckpointHook, kept for --resume; every 4k iterations,
# the official 40k interval, the authors' 120k configs kept one every 12k); train_cost.json and
# train_metrics.json as every run of the project writes them (dcl_mmdet's hooks, under
# default_hooks so that a config's custom_hooks stay its own); no visualisation; seed 0 and no
# cudnn autotuning. The schedules (schedule_*.py here) set no hooks: mmengine refuses a key that
# two sibling bases both set. train.py turns evaluation during training off (predict.py scores
# the final model).
_base_ = 'mmseg::_base_/default_runtime.py'
custom_imports = dict(imports=['dcl_mmseg', 'dcl_mmdet'], allow_failed_imports=False)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='DurableCheckpointHook', by_epoch=False, interval=4000, save_last=True,
                    max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    train_cost=dict(type='mmdet.TrainingCostHook', warmup=5),
    train_metrics=dict(type='mmdet.TrainMetricsHook', interval=20))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
