"""Flux on MMAction2's own VisionTransformer, through configuration only."""
import torch

from mmaction.registry import MODELS


def vit_recognizer_cfg():
    return dict(
        type='FluxRecognizer',
        backbone=dict(type='SelectiveVisionTransformer',
                      vit=dict(type='VisionTransformer', img_size=56, patch_size=14, embed_dims=32,
                               depth=1, num_heads=2, num_frames=4, tubelet_size=1,
                               use_mean_pooling=False)),
        cls_head=dict(type='FluxMultiHead', num_classes=5, in_channels=32, pool_num_heads=2,
                      pool_dims=32, head_budgets=(48, 32, 16)),
        train_cfg=dict(budgets=(48, 32, 16)),
        test_cfg=dict(token_budget=20))


def test_mmaction_vit_at_any_grid_and_budget():
    model = MODELS.build(vit_recognizer_cfg()).eval()
    assert type(model.backbone.vit).__module__ == 'mmaction.models.backbones.vit_mae'
    x = torch.randn(1, 3, 6, 42, 70)  # other frames, H != W, batch 1
    with torch.no_grad():
        tokens, kept = model.backbone.forward_features(x, budget=20)[:2]
        logits = model(x.unsqueeze(1), mode='tensor', stage='head')
    assert tokens.shape == (1, 20, 32) and kept.shape == (1, 20)
    assert logits.shape == (1, 5) and torch.isfinite(logits).all()


def test_mmaction_vit_trains_with_flux_multi():
    from mmaction.structures import ActionDataSample
    model = MODELS.build(vit_recognizer_cfg())
    x = torch.randn(2, 1, 3, 4, 56, 56)
    samples = []
    for label in (1, 3):
        sample = ActionDataSample()
        sample.set_gt_label(label)
        samples.append(sample)
    losses = model.loss(x, samples)
    assert {k for k in losses if 'loss' in k} == {'loss_cls_0', 'loss_cls_1', 'loss_cls_2',
                                                  'loss_align_1', 'loss_align_2'}
    assert {'top1_acc', 'top1_acc_2'} <= set(losses)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert model.backbone.vit.patch_embed.projection.weight.grad.abs().sum() > 0


def test_weights_of_a_plain_mmaction_vit_recognizer_load_into_the_wrapper():
    # fine-tuning from an MMAction2 ViT checkpoint (backbone.<name> keys) through configuration only
    from mmengine.runner.checkpoint import load_state_dict
    vit = vit_recognizer_cfg()['backbone']['vit']
    plain = MODELS.build(dict(type='Recognizer3D', backbone=dict(vit, use_mean_pooling=True),
                              cls_head=dict(type='TimeSformerHead', num_classes=5, in_channels=32)))
    cfg = vit_recognizer_cfg()
    cfg['backbone']['vit']['use_mean_pooling'] = True
    flux = MODELS.build(cfg).eval()
    load_state_dict(flux, plain.state_dict(), strict=False)
    for name, value in plain.backbone.state_dict().items():
        assert torch.equal(flux.backbone.vit.state_dict()[name], value), name
    # the mean-pooling ViT's final LayerNorm (fc_norm) is applied to every kept token
    with torch.no_grad():
        flux.backbone.vit.fc_norm.bias.fill_(3.0)
        tokens = flux.backbone(torch.randn(1, 3, 4, 56, 56))
    assert torch.allclose(tokens.mean(-1), torch.full((1, 64), 3.0), atol=1e-5)
