# Runtime shared by every mmflux config (MMAction2's defaults plus the plugin import).
custom_imports = dict(imports=['mmflux'], allow_failed_imports=False)
default_scope = 'mmaction'

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, ignore_last=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, save_best='auto', max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    sync_buffers=dict(type='SyncBuffersHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='ActionVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False

# Token Optimization switch: its keys are owned by mmflux/evaluation/to_switch.py (TO_FIELDS);
# off while empty. Applied by FluxRunner in MMAction2's and mmflux's tools/test.py and by
# mmaction.apis.init_recognizer:
#   --cfg-options token_optimization.budget=1024 token_optimization.plan=to_plan.json
#   --cfg-options token_optimization.budget=1024 "token_optimization.grid=(16,224)"
#   --cfg-options token_optimization.budget=None   (every token)
# (optional: token_optimization.selector=RandomSelector, .head=0, .max_latency_ms=30)
runner_type = 'FluxRunner'
token_optimization = dict()
