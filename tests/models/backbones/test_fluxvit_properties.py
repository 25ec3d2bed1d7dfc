"""Property tests of FluxViT: random grids, budgets and batch sizes never crash,
keep the documented number of tokens and give finite outputs; bf16 autocast
stays close to fp32 (CPU). A seeded loop (``hypothesis`` is not a dependency)."""
import numpy as np
import pytest
import torch

from mmaction.registry import MODELS
from conftest import tiny_backbone_cfg

NUM_CASES = 30
PATCH = 14


def tiny_backbone(selector):
    torch.manual_seed(0)
    model = MODELS.build(tiny_backbone_cfg(arch=dict(embed_dims=32), layer_scale_init_value=0.1,
                                           selector=selector))
    model.init_weights()
    return model.eval()


def cases(seed):
    rng = np.random.default_rng(seed)
    for _ in range(NUM_CASES):
        frames = int(rng.integers(1, 11))
        hp, wp = (int(v) for v in rng.integers(1, 6, size=2))  # non-square grids too
        batch = int(rng.integers(1, 4))
        total = frames * hp * wp
        kind = rng.integers(4)
        budget = (None if kind == 0 else int(rng.integers(1, total + 1)) if kind < 3 else
                  int(rng.integers(total, 2 * total + 2)))  # also budgets >= all tokens
        yield frames, hp, wp, batch, budget


def expected_per_group(frames, tokens_per_frame, budget, exact):
    """Tokens each temporal group keeps, from the rule as documented: G groups, the
    largest of 4 / 2 / 1 that splits the frames into groups of at least two frames;
    each keeps ``int(budget / N * N / G)`` in floats as the released code computes it
    (``int((1 - r) * T_g * L)``, ``r = 1 - budget / N``), or, with ``exact_count``,
    ``budget`` split with the remainder on the first groups."""
    groups = next((g for g in (4, 2) if frames % g == 0 and frames // g >= 2), 1)
    total = frames * tokens_per_frame
    if exact:
        return [budget // groups + (g < budget % groups) for g in range(groups)]
    ratio = 1 - budget / total
    return [int((1 - ratio) * (frames // groups) * tokens_per_frame)] * groups


def test_expected_per_group_by_hand():
    # the helper above against counts worked out on paper
    assert expected_per_group(12, 256, 1024, False) == [255] * 4  # 1024/3072: keeps 1020
    assert expected_per_group(6, 25, 75, False) == [37, 37]  # the fixture's 6 x 70 at 75: 74
    assert expected_per_group(5, 4, 10, False) == [10]  # odd frames: one group
    assert expected_per_group(1, 6, 3, False) == [3]
    assert expected_per_group(8, 1, 7, True) == [2, 2, 2, 1]


@pytest.mark.parametrize('selector', [
    dict(type='GroupDynamicSelector'),
    dict(type='GroupDynamicSelector', exact_count=True),
    dict(type='RandomSelector'),
])
def test_random_grids_and_budgets(selector):
    model = tiny_backbone(selector)
    torch.manual_seed(1)
    for frames, hp, wp, batch, budget in cases(seed=len(str(selector))):
        x = torch.randn(batch, 3, frames, hp * PATCH, wp * PATCH)
        total = frames * hp * wp
        with torch.no_grad():
            tokens, kept = model.forward_features(x, budget)[:2]
        case = dict(frames=frames, hw=(hp, wp), batch=batch, budget=budget)
        if budget is None or budget >= total:
            expected = total
            assert kept is None, case
        else:
            per_group = expected_per_group(frames, hp * wp, budget, selector.get('exact_count'))
            expected = sum(per_group)
            if selector.get('exact_count'):
                assert expected == budget, case
            else:  # never above the budget, at most one token per group below it
                assert 0 <= budget - expected <= len(per_group), case
            assert kept.shape == (batch, expected), case
            group_size = total // len(per_group)
            for row in kept:
                assert torch.equal(row, row.sort().values), case  # ascending
                assert len(set(row.tolist())) == expected, case  # no repeats
                counts = torch.bincount(row // group_size, minlength=len(per_group))
                assert counts.tolist() == per_group, case
            if expected:
                assert int(kept.min()) >= 0 and int(kept.max()) < total, case
        assert tokens.shape == (batch, 1 + expected, 32), case
        assert torch.isfinite(tokens).all(), case


def test_training_mode_is_finite_and_differentiable():
    model = tiny_backbone(dict(type='GroupDynamicSelector')).train()
    for frames, hp, wp, batch, budget in list(cases(seed=7))[:8]:
        x = torch.randn(batch, 3, frames, hp * PATCH, wp * PATCH, requires_grad=True)
        out = model(x, budget)
        out.float().sum().backward()
        assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


def test_bf16_autocast_stays_close_to_fp32():
    model = tiny_backbone(dict(type='GroupDynamicSelector'))
    compared = 0
    for frames, hp, wp, batch, budget in cases(seed=3):
        x = torch.randn(batch, 3, frames, hp * PATCH, wp * PATCH)
        with torch.no_grad():
            ref, kept_ref = model.forward_features(x, budget)[:2]
            with torch.autocast('cpu', dtype=torch.bfloat16):
                low, kept_low = model.forward_features(x, budget)[:2]
        assert torch.isfinite(low).all()
        assert low.shape == ref.shape
        if kept_ref is not None and not torch.equal(kept_ref, kept_low):
            # near-tied selection scores may order differently in bf16; larger
            # kept sets must still overlap almost entirely
            for a, b in zip(kept_ref.tolist(), kept_low.tolist()):
                if len(a) >= 8:
                    assert len(set(a) & set(b)) >= 0.75 * len(a)
            continue
        rel = ((low.float() - ref).norm() / ref.norm()).item()
        assert rel < 2e-2, (frames, hp, wp, batch, budget, rel)
        compared += 1
    assert compared >= NUM_CASES // 2
