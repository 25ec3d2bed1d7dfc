"""FluxMultiHead owns the classification loss: loss_cls config, one smoothing, top-1 logged."""
import pytest
import torch
import torch.nn.functional as F

from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample


def head(**kwargs):
    cfg = dict(type='FluxMultiHead', num_classes=5, in_channels=8, pool_num_heads=2, pool_dims=8,
               head_budgets=(48, 32, 16))
    return MODELS.build(dict(cfg, **kwargs))


def samples(*labels):
    return [ActionDataSample().set_gt_label(label) for label in labels]


def soft_ce(logits, targets):
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()


@pytest.fixture
def scores():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(4, 5, generator=g) for _ in range(3)]


def test_hard_labels_are_smoothed_once(scores):
    eps = 0.1
    losses = head(label_smooth_eps=eps).loss_by_feat(scores, samples(0, 3, 4, 1), heads=(0, 1, 2))
    targets = F.one_hot(torch.tensor([0, 3, 4, 1]), 5).float() * (1 - eps) + eps / 5
    for h in range(3):
        torch.testing.assert_close(losses[f'loss_cls_{h}'], soft_ce(scores[h], targets))


def test_soft_labels_are_smoothed_once_and_have_no_accuracy(scores):
    soft = torch.softmax(torch.randn(4, 5), dim=-1)
    losses = head(label_smooth_eps=0.2).loss_by_feat(scores, samples(*soft), heads=(0, 1, 2))
    torch.testing.assert_close(losses['loss_cls_2'], soft_ce(scores[2], soft * 0.8 + 0.2 / 5))
    assert not any('acc' in key for key in losses)  # as MMAction2's BaseHead for soft labels


def test_loss_cls_config_is_used(scores):
    """Regression: the recognizer computed its own loss, so cls_head.loss_cls was dead config."""
    plain = head().loss_by_feat(scores, samples(0, 1, 2, 3), heads=(0, 1, 2))
    doubled = head(loss_cls=dict(type='CrossEntropyLoss', loss_weight=2.0)).loss_by_feat(
        scores, samples(0, 1, 2, 3), heads=(0, 1, 2))
    torch.testing.assert_close(doubled['loss_cls_1'], 2 * plain['loss_cls_1'])


def test_top1_is_logged_like_mmaction(scores):
    labels = scores[0].argmax(-1).tolist()
    labels[0] = (labels[0] + 1) % 5
    losses = head().loss_by_feat(scores, samples(*labels), heads=(0, 1, 2))
    assert losses['top1_acc'] == pytest.approx(0.75) == losses['top1_acc_0'].item()
    assert {'top5_acc', 'top1_acc_1', 'top5_acc_2'} <= set(losses)
    single = head().loss_by_feat(scores[0], samples(*labels))  # BaseHead's keys for one tensor
    assert set(single) == {'loss_cls', 'top1_acc', 'top5_acc'}


def test_views_share_their_sample_label():
    scores = torch.randn(4, 5)
    losses = head().loss_by_feat([scores], samples(2, 4), heads=(0, ))
    torch.testing.assert_close(losses['loss_cls_0'], F.cross_entropy(scores, torch.tensor([2, 2, 4, 4])))


def test_label_out_of_range_names_the_fix():
    with pytest.raises(ValueError, match='label 7 is out of range for cls_head.num_classes=5; fix'):
        head().loss_by_feat([torch.randn(1, 5)], samples(7), heads=(0, ))


def test_smoothing_is_checked_where_it_is_set():
    with pytest.raises(ValueError, match=r'cls_head.label_smooth_eps=1.5: must be in \[0, 1\)'):
        head(label_smooth_eps=1.5)
