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


@pytest.mark.parametrize('exact_count', [False, True])
@pytest.mark.parametrize('frames', [6, 8, 5])
def test_budget_tensor_keeps_the_same_tokens_as_the_int_budget(frames, exact_count):
    """The runtime-budget path (what an exported graph runs) at every budget 1..N+3:
    equal counts (4/2 groups), unequal ones (exact_count) and single-frame groups (T=5)."""
    selector = GroupDynamicSelector(exact_count=exact_count)
    tokens = torch.randn(2, frames, 9, 8, generator=torch.Generator().manual_seed(frames))
    tokens[:, :, :4] = tokens[:, :1, :4]  # static patches: tied zero changes
    total = frames * 9
    for budget in range(1, total + 4):
        if selector.kept_count(frames, 9, min(budget, total)) == 0:
            continue
        expected = selector(tokens, budget) if budget < total else torch.arange(total).expand(2, -1)
        got = selector(tokens, torch.tensor(budget))
        assert torch.equal(got, expected), budget
