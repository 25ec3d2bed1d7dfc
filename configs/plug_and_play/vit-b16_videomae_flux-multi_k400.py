# Plug-and-play Flux (issue #5): MMAction2's own VideoMAE ViT-B/16, unchanged, fine-tuned on
# Kinetics-400 with Flux sampling, the group-dynamic selector and Flux-Multi, by configuration only.
# SelectiveVisionTransformer wraps mmaction.models.VisionTransformer: it adds the 3-D positional
# interpolation and the selector, and loads MMAction2's ViT checkpoints as they are.
# Tokens: ViT-B/16 embeds 2 frames x 16 px per token, so its native 16x224 input is 1568 tokens.
#   python tools/train.py configs/plug_and_play/vit-b16_videomae_flux-multi_k400.py
#   python tools/test.py  configs/plug_and_play/vit-b16_videomae_flux-multi_k400.py CKPT --budget 784
_base_ = [
    '../_base_/datasets/k400_flux.py', '../_base_/schedules/flux_finetune.py',
    '../_base_/default_runtime.py'
]

budgets = (1568, 1024, 512)
model = dict(
    type='FluxRecognizer',
    backbone=dict(
        type='SelectiveVisionTransformer',
        # the config of mmaction2's vit-base-p16_videomae-k400-pre_16x4x1_kinetics-400.py
        vit=dict(type='VisionTransformer', img_size=224, patch_size=16, embed_dims=768, depth=12,
                 num_heads=12, mlp_ratio=4, qkv_bias=True, num_frames=16, tubelet_size=2,
                 norm_cfg=dict(type='LN', eps=1e-6), drop_path_rate=0.1),
        selector=dict(type='GroupDynamicSelector')),
    cls_head=dict(type='FluxMultiHead', num_classes=400, in_channels=768, head_budgets=budgets,
                  pool_num_heads=16, pool_dims=768, loss_cls=dict(type='CrossEntropyLoss'),
                  label_smooth_eps=0.1, average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        format_shape='NCTHW',
        blending=dict(type='FluxBatchAugment', num_classes=400, mixup_alpha=0.8, cutmix_alpha=1.0,
                      prob=1.0, switch_prob=0.5, erasing=dict(prob=0.25, mode='pixel'))),
    train_cfg=dict(budgets=budgets, heads=(0, 1, 2), align_weight=1.0),
    test_cfg=dict(token_budget=1568, head=None, max_testing_views=None))

# MMAction2's VideoMAE ViT-B/16 fine-tuned on K400 (backbone.* keys load into backbone.vit.*)
load_from = ('https://download.openmmlab.com/mmaction/v1.0/recognition/videomae/'
             'vit-base-p16_videomae-k400-pre_16x4x1_kinetics-400_20221013-860a3cd3.pth')

# Flux grid for 16 px x 2-frame tokens: 8..32 frames, 112..336 px, 1024..3136 tokens per clip
# (the sampler counts tokens with the wrapped ViT's own patch and tubelet sizes)
train_dataloader = dict(
    batch_sampler=dict(frames=(8, 34, 2), sides=(112, 337, 32), token_window=(1024, 3136)))

# test at the ViT's native 16x224 grid (4 clips x 3 crops)
test_frames = 16
test_side = 224
val_pipeline = [
    dict(type='DecordInit'),
    dict(type='FluxUniformSample', clip_len=test_frames, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, test_side)),
    dict(type='CenterCrop', crop_size=test_side),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='FluxUniformSample', clip_len=test_frames, num_clips=4, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, test_side)),
    dict(type='ThreeCrop', crop_size=test_side),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

custom_hooks = [
    dict(type='FluxSamplerResumeHook'),
    dict(type='KeyedRandomHook'),
    dict(type='BadVideoCountHook'),
    dict(type='FluxConfigCheckHook'),
]
randomness = dict(seed=0, diff_rank_seed=True)
