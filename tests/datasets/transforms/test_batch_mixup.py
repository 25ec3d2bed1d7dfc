"""FluxBatchAugment: Mixup / CutMix of a batch, clip-consistent, with soft labels."""
import numpy as np
import pytest
import torch

from mmaction.structures import ActionDataSample
from mmflux.datasets.transforms import FluxBatchAugment


def samples(labels):
    return [ActionDataSample().set_gt_label(int(x)) for x in labels]


def test_mixup_flip_partner_and_soft_labels():
    np.random.seed(0)
    aug = FluxBatchAugment(num_classes=4, mixup_alpha=0.8, cutmix_alpha=0.0)
    imgs = torch.arange(4.0).view(4, 1, 1, 1, 1, 1).expand(4, 1, 3, 2, 8, 8).clone()
    out, data_samples = aug(imgs, samples([0, 1, 2, 3]))
    labels = torch.stack([s.gt_label for s in data_samples])
    lam = labels[0, 0].item()
    assert 0 <= lam <= 1
    torch.testing.assert_close(labels[0, 3], torch.tensor(1 - lam))  # partner = flip
    torch.testing.assert_close(out[0], torch.full_like(out[0], 3 * (1 - lam)))
    torch.testing.assert_close(labels.sum(1), torch.ones(4))


def test_cutmix_box_is_shared_by_frames_and_lambda_is_area():
    np.random.seed(3)
    aug = FluxBatchAugment(num_classes=3, mixup_alpha=0.0, cutmix_alpha=1.0)
    imgs = torch.stack([torch.zeros(1, 3, 4, 20, 20), torch.ones(1, 3, 4, 20, 20)])
    out, data_samples = aug(imgs, samples([0, 2]))
    pasted = out[0] != 0
    for t in range(1, 4):
        assert torch.equal(pasted[:, :, t], pasted[:, :, 0])
    area = pasted[0, 0, 0].float().mean().item()
    labels = torch.stack([s.gt_label for s in data_samples])
    torch.testing.assert_close(labels[0], torch.tensor([1 - area, 0.0, area]))


def test_switch_probability_and_smoothing():
    np.random.seed(0)
    aug = FluxBatchAugment(num_classes=10, label_smoothing=0.1, prob=0.0)
    _, data_samples = aug(torch.zeros(2, 1, 3, 2, 4, 4), samples([1, 2]))
    label = data_samples[0].gt_label
    torch.testing.assert_close(label[1], torch.tensor(0.91))
    torch.testing.assert_close(label[0], torch.tensor(0.01))
    both = FluxBatchAugment(num_classes=10)
    draws = [both._draw()[1] for _ in range(2000)]
    assert 0.45 < np.mean(draws) < 0.55
    with pytest.raises(ValueError):
        FluxBatchAugment(num_classes=10, partner='other')
