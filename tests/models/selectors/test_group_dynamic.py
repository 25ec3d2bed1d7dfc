"""Token selectors: counts, order, what they keep."""
import pytest
import torch

from mmflux.models.selectors import GroupDynamicSelector


@pytest.mark.parametrize('frames,side,budget,kept', [
    (12, 224, 1024, 1020), (16, 196, 1024, 1020), (24, 224, 1024, 1020), (20, 224, 1024, 1020),
    (12, 196, 2048, 2044), (16, 196, 2048, 2044), (24, 224, 2048, 2044),
    (8, 224, 1024, 1024), (6, 70, 75, 74), (16, 224, 2048, 2048)])
def test_reference_count_rule(frames, side, budget, kept):
    """int((1 - r) * T_g * L) per group, as the released code (spec section 3.2)."""
    selector = GroupDynamicSelector()
    assert selector.kept_count(frames, (side // 14)**2, budget) == kept


@pytest.mark.parametrize('frames,side,budget', [(12, 224, 1024), (24, 224, 2048), (6, 70, 75), (5, 42, 7)])
def test_exact_count_keeps_budget(frames, side, budget):
    assert GroupDynamicSelector(exact_count=True).kept_count(frames, (side // 14)**2, budget) == budget


def test_groups_follow_released_rule_and_fix_its_crashes():
    selector = GroupDynamicSelector()
    expected = {2: 1, 4: 2, 6: 2, 8: 4, 10: 2, 12: 4, 16: 4, 24: 4, 1: 1, 3: 1, 5: 1, 9: 1}
    assert {t: selector.num_groups(t) for t in expected} == expected


def test_keeps_the_moving_patches():
    """A patch that changes between frames outranks static ones, in every group."""
    B, T, L, C = 2, 8, 16, 8
    tokens = torch.zeros(B, T, L, C)
    tokens[:, ::2, 5] = 3.0  # patch 5 flickers in every frame pair
    tokens[1, ::2, 9] = 5.0  # in sample 1 patch 9 moves more than patch 5
    kept = GroupDynamicSelector()(tokens, budget=8)  # 4 groups x 2 tokens
    frames_of = kept // L
    patches_of = kept % L
    assert (patches_of[0] == 5).all()
    assert sorted(frames_of[0].tolist()) == list(range(8))
    assert set(patches_of[1].tolist()) == {9}  # selection is per sample
