"""ClipRandomErasing: one box for every frame of a clip, per-frame noise."""
import random

import pytest
import torch

from mmaction.registry import MODELS
from mmflux.datasets.transforms import ClipRandomErasing


def test_clip_erasing_uses_one_box_for_all_frames():
    random.seed(0)
    torch.manual_seed(0)
    erasing = MODELS.build(dict(type='ClipRandomErasing', prob=1.0))
    inputs = torch.full((3, 1, 3, 5, 32, 40), 7.0)
    out, _ = erasing(inputs.clone(), None)
    for clip in out.reshape(-1, 3, 5, 32, 40):
        mask = clip != 7.0
        assert mask.any()
        for t in range(1, 5):
            assert torch.equal(mask[:, t], mask[:, 0])  # same box every frame
        assert torch.equal(mask[0], mask[1]) and torch.equal(mask[0], mask[2])
        area = mask[0, 0].float().mean().item()
        assert 0.01 < area < 0.4
        values = clip[mask]
        assert abs(values.mean().item()) < 0.5 and 0.5 < values.std().item() < 1.5
        # independent noise per frame
        assert not torch.equal(clip[:, 0][mask[:, 0]], clip[:, 1][mask[:, 1]])


def test_clip_erasing_probability():
    random.seed(1)
    erasing = ClipRandomErasing(prob=0.25)
    inputs = torch.zeros(400, 3, 2, 16, 16)
    erasing.erase(inputs)
    rate = (inputs.flatten(1) != 0).any(1).float().mean().item()
    assert 0.17 < rate < 0.33
    with pytest.raises(ValueError):
        ClipRandomErasing(mode='block')
