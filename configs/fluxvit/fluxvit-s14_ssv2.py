# FluxViT-S14 on Something-Something V2: evaluation settings of the paper.
# Test at another budget:  --cfg-options model.test_cfg.token_budget=1024
# Token Optimization: a larger test grid reduced by the selector, e.g.
#   --cfg-options model.test_cfg.token_budget=1024 test_frames=12 ...  (see tools/token_optimize.py)
_base_ = [
    '../_base_/models/fluxvit_s14.py', '../_base_/datasets/ssv2_flux.py',
    '../_base_/default_runtime.py'
]

model = dict(cls_head=dict(num_classes=174))
