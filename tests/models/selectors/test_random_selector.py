"""RandomSelector: a reproducible draw from its seed and its input, not the global RNG."""
import pytest
import torch

from mmflux.models.selectors import GroupDynamicSelector, RandomSelector
from conftest import tiny_backbone_cfg


@pytest.fixture
def tokens():
    return torch.randn(3, 6, 25, 4, generator=torch.Generator().manual_seed(5))


def test_same_count_sorted_and_per_sample(tokens):
    kept = RandomSelector()(tokens, budget=75)
    assert kept.shape == (3, GroupDynamicSelector().kept_count(6, 25, 75))
    assert (kept.diff(dim=1) > 0).all()
    assert not torch.equal(kept[0], kept[1])


def test_independent_of_what_drew_before(tokens):
    """Regression: it drew from the global RNG, so any earlier draw changed its choice."""
    selector = RandomSelector()
    torch.manual_seed(0)
    first = selector(tokens, 40)
    torch.manual_seed(0)
    torch.rand(17)  # something else draws first
    assert torch.equal(selector(tokens, 40), first)
    state = torch.random.get_rng_state()
    selector(tokens, 40)
    assert torch.equal(torch.random.get_rng_state(), state)  # and it leaves the RNG alone


def test_independent_of_call_order_and_batch(tokens):
    selector = RandomSelector()
    together = selector(tokens, 40)
    alone = [selector(tokens[i:i + 1], 40)[0] for i in reversed(range(3))][::-1]
    assert all(torch.equal(a, b) for a, b in zip(together, alone))


def test_new_input_or_seed_gives_a_new_draw(tokens):
    base = RandomSelector(seed=0)(tokens, 40)
    assert not torch.equal(RandomSelector(seed=1)(tokens, 40), base)
    assert not torch.equal(RandomSelector(seed=0)(tokens + 1, 40), base)


def test_backbone_draws_are_a_function_of_the_seed_and_the_clip():
    from mmaction.registry import MODELS
    backbone = MODELS.build(tiny_backbone_cfg(selector=dict(type='RandomSelector'))).eval()
    x = torch.randn(1, 3, 4, 56, 56)
    kept = []
    for seed in (1, 1, 2):
        backbone.selector = RandomSelector(seed=seed)
        torch.manual_seed(seed)  # the global RNG plays no part
        with torch.no_grad():
            kept.append(backbone(x, 20, return_output=True).kept)
    assert torch.equal(kept[0], kept[1]) and not torch.equal(kept[0], kept[2])


def test_seed_must_be_an_int():
    with pytest.raises(ValueError, match='model.backbone.selector.seed'):
        RandomSelector(seed='0')
