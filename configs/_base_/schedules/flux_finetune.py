# Fine-tuning schedule of the released K400 scripts:
# AdamW (0.9, 0.999), wd 0.05, layer-wise lr decay 0.75, no decay for 1-D weights,
# biases, pos_embed and cls_token; lr 8e-4 = 2e-4 x 512 videos x 2 repeats / 256;
# per-iteration linear warmup (1 epoch, from 4e-6) then cosine to 4e-6; 5 epochs.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=8e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    constructor='FluxLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.75, no_decay_names=('pos_embed', 'cls_token')),
    clip_grad=None)

max_epochs = 5
warmup_epochs = 1
param_scheduler = [
    dict(type='LinearLR', start_factor=4e-6 / 8e-4, end_factor=1.0, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    # no end / T_max: the cosine ends with train_cfg.max_epochs, also when it is
    # overridden (mmflux/engine/schedulers/cosine_to_end.py)
    dict(type='CosineToEndLR', eta_min=4e-6, by_epoch=True, begin=warmup_epochs,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_begin=1, val_interval=1)

# lr above is for 512 videos per step (64 GPUs x 8); --auto-scale-lr rescales it
auto_scale_lr = dict(enable=False, base_batch_size=512)
