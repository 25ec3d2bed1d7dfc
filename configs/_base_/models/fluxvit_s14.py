# FluxViT-S/14 with the multi-budget head (heads 0/1/2 <-> 3072/2048/1024 tokens).
model = dict(
    type='FluxRecognizer',
    backbone=dict(
        type='FluxViT',
        arch='small',
        drop_path_rate=0.1,
        layer_scale_init_value=1e-5,
        selector=dict(type='GroupDynamicSelector', exact_count=False)),
    cls_head=dict(
        type='FluxMultiHead',
        num_classes=400,
        in_channels=384,
        head_budgets=(3072, 2048, 1024),
        pool_num_heads=16,
        pool_dims=768,
        # the one classification loss, applied by the head at every trained budget to the
        # (Mixup/CutMix-soft) labels after smoothing them once by label_smooth_eps
        loss_cls=dict(type='CrossEntropyLoss'),
        label_smooth_eps=0.1,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW',
        # random erasing 0.25 then timm-style batch Mixup 0.8 / CutMix 1.0 (label
        # smoothing 0.1 is the head's label_smooth_eps, so the blending does none)
        blending=dict(type='FluxBatchAugment', num_classes=400, mixup_alpha=0.8,
                      cutmix_alpha=1.0, prob=1.0, switch_prob=0.5,
                      erasing=dict(prob=0.25, mode='pixel'))),
    # Flux-Multi: every batch at 3072, 2048 and 1024 tokens plus feature alignment
    train_cfg=dict(budgets=(3072, 2048, 1024), heads=(0, 1, 2), align_weight=1.0),
    # test budget in patch tokens (None = all); head chosen by nearest budget unless set
    test_cfg=dict(token_budget=2048, head=None, max_testing_views=None))
