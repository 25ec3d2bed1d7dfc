# FluxViT-S/14 on Kinetics-400: the paper's Flux-Multi fine-tuning recipe and evaluation.
# Test at another budget:  --cfg-options model.test_cfg.token_budget=1024
# Token Optimization: a larger test grid reduced by the selector, e.g.
#   python tools/test.py CONFIG CKPT --grid 16 224 --budget 1024   (see tools/token_optimize.py)
_base_ = [
    '../_base_/models/fluxvit_s14.py', '../_base_/datasets/k400_flux.py',
    '../_base_/schedules/flux_finetune.py', '../_base_/default_runtime.py'
]

model = dict(
    cls_head=dict(num_classes=400),
    data_preprocessor=dict(blending=dict(num_classes=400)))

custom_hooks = [
    dict(type='FluxSamplerResumeHook'),
    dict(type='KeyedRandomHook'),  # random draws keyed by (seed, iteration): exact resume
    dict(type='BadVideoCountHook'),  # per-epoch count of skipped bad videos
    dict(type='FluxConfigCheckHook'),  # config errors before the first iteration
]
# per-rank Mixup/erasing draws as in the reference; the Flux grid stays shared
randomness = dict(seed=0, diff_rank_seed=True)
