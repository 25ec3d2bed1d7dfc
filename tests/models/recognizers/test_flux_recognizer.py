"""FluxRecognizer asks the backbone how many tokens it kept, and the head for the loss."""
import pytest
import torch

from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from conftest import small_plug_and_play_cfg, tiny_model_cfg


def predict(model, x):
    with torch.no_grad():
        return model.eval().predict(x, [ActionDataSample() for _ in range(x.shape[0])])[0]


def test_plug_and_play_vit_reports_every_kept_token():
    """Regression: 783 at token_budget=784 on 16x224 (it assumed a cls token the ViT lacks)."""
    cfg = small_plug_and_play_cfg()
    cfg.model.test_cfg.token_budget = 784
    result = predict(MODELS.build(cfg.model), torch.randn(1, 1, 3, 16, 224, 224))
    assert result.metainfo['num_tokens'] == 784
    assert result.metainfo['head'] == 1  # 1024 is the nearest trained budget


@pytest.mark.parametrize('backbone,budget,head', [('vit', 24, 1), ('flux', 24, 1),
                                                  ('vit', 22, 2), ('flux', None, 0)])
def test_head_is_chosen_from_the_true_count(backbone, budget, head):
    """Heads for (48, 32, 16): 24 ties 32/16 and takes the larger, so one token less flips it."""
    cfg = tiny_model_cfg(budgets=(48, 32, 16), token_budget=budget)
    if backbone == 'vit':
        cfg['backbone'] = dict(type='SelectiveVisionTransformer',
                               vit=dict(type='VisionTransformer', img_size=56, patch_size=14,
                                        embed_dims=64, depth=1, num_heads=2, num_frames=8,
                                        tubelet_size=2))
    result = predict(MODELS.build(cfg), torch.randn(1, 1, 3, 8, 56, 56))
    assert result.metainfo['num_tokens'] == (budget or 64 if backbone == 'vit' else budget or 128)
    assert result.metainfo['head'] == head


def test_backbone_must_report_its_output():
    cfg = tiny_model_cfg()
    cfg['backbone'] = dict(type='ResNet3d', depth=50, pretrained=None, pretrained2d=False)
    with pytest.raises(ValueError, match="model.backbone.type='ResNet3d' has no forward_features"):
        MODELS.build(cfg)


def test_loss_goes_through_the_head(monkeypatch):
    model = MODELS.build(tiny_model_cfg(budgets=(64, 32, 16)))
    seen = []
    original = model.cls_head.loss_by_feat

    def spy(scores, data_samples, heads=None):
        seen.append(([s.shape for s in scores], list(heads)))
        return original(scores, data_samples, heads)

    monkeypatch.setattr(model.cls_head, 'loss_by_feat', spy)
    samples = [ActionDataSample().set_gt_label(i) for i in (1, 2)]
    losses = model.loss(torch.randn(2, 2, 3, 4, 56, 56), samples)  # 2 views per sample
    assert seen == [([torch.Size([4, 7])] * 3, [0, 1, 2])]
    assert {'loss_cls_0', 'loss_align_2', 'top1_acc'} <= set(losses)


@pytest.mark.parametrize('train_cfg,test_cfg,expected', [
    (None, dict(token_budget=0), 'model.test_cfg.token_budget=0: 0 is not a token count >= 1; fix'),
    (dict(budgets=(96, 0, 32)), None, 'model.train_cfg.budgets=[96, 0, 32]: 0 is not a token count'),
    (dict(heads=(0, 1)), None, 'model.train_cfg.heads=[0, 1]: must give one head per budget'),
    (dict(heads=(0, 1, 3)), None, 'model.train_cfg.heads=[0, 1, 3]: [3] out of range'),
    (None, dict(head=3), 'model.test_cfg.head=3: out of range for the 3 heads'),
])
def test_constructor_checks_its_own_settings(train_cfg, test_cfg, expected):
    cfg = tiny_model_cfg()
    cfg.update(train_cfg=train_cfg, test_cfg=test_cfg)
    with pytest.raises(ValueError, match=expected.replace('[', r'\[').replace(']', r'\]')
                       .replace('(', r'\(').replace(')', r'\)')):
        MODELS.build(cfg)
