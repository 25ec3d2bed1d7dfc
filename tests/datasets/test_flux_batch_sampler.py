from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import Sampler

import mmflux  # noqa: F401  (registers everything)
from mmaction.registry import DATA_SAMPLERS
from mmengine.dataset import DefaultSampler
from mmflux.datasets import FluxBatchSampler, flux_grid_pairs
from mmflux.datasets.flux_batch_sampler import sample_seed, with_backbone_geometry
from mmflux.utils.token_geometry import TokenGeometry

#: the released FluxViT's token geometry (14 px x 1 frame); the sampler has no default
RELEASED = dict(patch_size=14, tubelet_size=1)

# The 41 accepted pairs of the released sampler's default window (checked by running
# the reference code).
SPEC_PAIRS = [
    (6, 280), (6, 308), (6, 336), (8, 224), (8, 252), (8, 280), (8, 308),
    (8, 336), (10, 224), (10, 252), (10, 280), (10, 308), (10, 336), (12, 196),
    (12, 224), (12, 252), (12, 280), (12, 308), (14, 196), (14, 224), (14, 252),
    (14, 280), (16, 168), (16, 196), (16, 224), (16, 252), (18, 168), (18, 196),
    (18, 224), (18, 252), (20, 168), (20, 196), (20, 224), (22, 140), (22, 168),
    (22, 196), (22, 224), (24, 140), (24, 168), (24, 196), (24, 224)
]

class StridedSampler(Sampler):
    """DistributedSampler-like index sampler with an explicit rank."""

    def __init__(self, n, rank=0, world_size=1, seed=0):
        self.n, self.rank, self.world_size, self.seed = n, rank, world_size, seed
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        return iter(order[self.rank::self.world_size])

    def __len__(self):
        return len(range(self.rank, self.n, self.world_size))


def grids(batches):
    return [tuple(batch[0][1:3]) for batch in batches]


def test_default_window_gives_the_41_spec_pairs():
    pairs = flux_grid_pairs(**RELEASED)
    assert pairs == SPEC_PAIRS
    assert min(t * (r // 14)**2 for t, r in pairs) == 2048
    assert max(t * (r // 14)**2 for t, r in pairs) == 6144
    sampler = FluxBatchSampler(StridedSampler(10), batch_size=2, seed=0, **RELEASED)
    assert sampler.pairs == SPEC_PAIRS


def test_batches_share_one_grid_and_cover_the_sampler():
    sampler = FluxBatchSampler(StridedSampler(23), batch_size=4, seed=3, **RELEASED)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 5  # drop_last
    for batch in batches:
        assert len(batch) == 4
        assert all(isinstance(x, tuple) and len(x) == 4 for x in batch)
        assert len({x[1:3] for x in batch}) == 1
        assert batch[0][1:3] in SPEC_PAIRS
        # the augmentation seed is keyed by (seed, epoch, dataset index)
        assert [x[3] for x in batch] == [sample_seed(3, 0, x[0]) for x in batch]
    flat = [x[0] for b in batches for x in b]
    assert flat == list(StridedSampler(23))[:20]
    keep = FluxBatchSampler(StridedSampler(23), batch_size=4, seed=3, drop_last=False,
                            **RELEASED)
    assert len(keep) == 6 and len(list(keep)[-1]) == 3


def test_draws_are_uniform_over_the_accepted_pairs():
    sampler = FluxBatchSampler(StridedSampler(4), batch_size=1, seed=123, **RELEASED)
    n_draws = 41 * 300
    counts = Counter(sampler.grid_for(epoch, b) for epoch in range(3)
                     for b in range(n_draws // 3))
    assert set(counts) == set(SPEC_PAIRS)
    expected = n_draws / 41
    chi2 = sum((counts[p] - expected)**2 / expected for p in SPEC_PAIRS)
    # 40 degrees of freedom: P(chi2 > 80) ~ 2e-4.
    assert chi2 < 80, chi2


def test_reproducible_from_seed_and_epoch_dependent():
    a = FluxBatchSampler(StridedSampler(64), batch_size=2, seed=7, **RELEASED)
    b = FluxBatchSampler(StridedSampler(64), batch_size=2, seed=7, **RELEASED)
    c = FluxBatchSampler(StridedSampler(64), batch_size=2, seed=8, **RELEASED)
    assert list(a) == list(b)
    assert grids(list(a)) != grids(list(c))
    first = grids(list(a))
    a.set_epoch(1)
    assert a.sampler.epoch == 1 and a.epoch == 1
    assert grids(list(a)) != first
    a.set_epoch(0)
    assert grids(list(a)) == first
    # global RNG state has no influence
    np.random.seed(0)
    torch.manual_seed(0)
    assert grids(list(b)) == first


def test_epoch_is_read_from_the_wrapped_sampler():
    """mmengine's DistSamplerSeedHook calls batch_sampler.sampler.set_epoch."""
    a = FluxBatchSampler(StridedSampler(40), batch_size=2, seed=1, **RELEASED)
    b = FluxBatchSampler(StridedSampler(40), batch_size=2, seed=1, **RELEASED)
    a.sampler.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)


def test_ranks_draw_identical_grids():
    per_rank = [
        FluxBatchSampler(StridedSampler(50, rank=r, world_size=2, seed=5),
                         batch_size=3, seed=11, **RELEASED) for r in range(2)
    ]
    for epoch in range(2):
        for s in per_rank:
            s.set_epoch(epoch)
        b0, b1 = (list(s) for s in per_rank)
        assert len(b0) == len(b1) == 8
        assert grids(b0) == grids(b1)
        assert {x[0] for b in b0 for x in b}.isdisjoint({x[0] for b in b1 for x in b})


def test_skip_batches_reproduces_the_uninterrupted_tail():
    full = FluxBatchSampler(StridedSampler(40, seed=2), batch_size=3, seed=9, **RELEASED)
    full.set_epoch(1)
    reference = list(full)
    resumed = FluxBatchSampler(StridedSampler(40, seed=2), batch_size=3, seed=9, **RELEASED)
    resumed.set_epoch(1)
    resumed.skip_batches(5)
    assert resumed.pending_skip == 5
    assert len(resumed) == len(reference) - 5
    assert list(resumed) == reference[5:]
    # consumed by one iteration only
    assert resumed.pending_skip == 0 and len(resumed) == len(reference)
    assert list(resumed) == reference
    with pytest.raises(ValueError):
        resumed.skip_batches(-1)


def test_skip_survives_an_iterator_that_never_runs():
    """torch's multi-worker DataLoader calls iter() twice and drops the first iterator."""
    full = FluxBatchSampler(StridedSampler(40, seed=2), batch_size=3, seed=9, **RELEASED)
    full.set_epoch(1)
    reference = list(full)
    resumed = FluxBatchSampler(StridedSampler(40, seed=2), batch_size=3, seed=9, **RELEASED)
    resumed.set_epoch(1)
    resumed.skip_batches(4)
    iter(resumed)  # discarded, never advanced
    assert list(resumed) == reference[4:]
    assert list(resumed) == reference


def test_seed_defaults():
    inherited = FluxBatchSampler(StridedSampler(10, seed=4321), batch_size=2, **RELEASED)
    assert inherited.seed == 4321

    class NoSeed(Sampler):

        def __iter__(self):
            return iter(range(10))

        def __len__(self):
            return 10

    synced = FluxBatchSampler(NoSeed(), batch_size=2, **RELEASED)
    assert isinstance(synced.seed, int)
    assert synced.epoch == 0 and len(list(synced)) == 5


def test_fixed_grid_and_registry_build():
    fixed = FluxBatchSampler(StridedSampler(8), batch_size=2, frames=8, sides=224, **RELEASED)
    assert fixed.pairs == [(8, 224)]
    assert set(grids(list(fixed))) == {(8, 224)}
    small = FluxBatchSampler(StridedSampler(8), batch_size=2, frames=4, sides=112,
                             token_window=None, **RELEASED)
    assert small.pairs == [(4, 112)]

    dataset = list(range(20))
    default = DefaultSampler(dataset, shuffle=True, seed=0)
    built = DATA_SAMPLERS.build(
        dict(type='FluxBatchSampler', frames=(6, 26, 2), sides=(112, 364, 28),
             token_window=(2048, 6144), patch_size=14, tubelet_size=1, seed=None),
        default_args=dict(sampler=default, batch_size=4))
    assert isinstance(built, FluxBatchSampler)
    assert built.seed == 0 and len(built) == 5

    class EchoDataset(torch.utils.data.Dataset):

        def __len__(self):
            return 20

        def __getitem__(self, key):
            return key

    loader = torch.utils.data.DataLoader(EchoDataset(), batch_sampler=built,
                                         collate_fn=lambda x: x)
    assert len(loader) == 5
    for batch in loader:
        assert len({x[1:3] for x in batch}) == 1


@pytest.mark.parametrize('kwargs, words', [
    (dict(frames=(26, 6, 2)), ['frames', 'empty']),
    (dict(sides=(364, 112)), ['sides', 'empty']),
    (dict(sides=(112, 364, 20)), ['sides', 'patch_size=14', 'multiples']),
    (dict(token_window=(10, 20)), ['token_window', 'admits no', 'Widen']),
    (dict(token_window=(6144, 2048)), ['token_window', 'min <= max']),
    (dict(frames=8, sides=112), ['token_window', 'token_window=None']),
    (dict(frames='abc'), ['frames', 'range()']),
    (dict(frames=(6, 26, 0)), ['frames', 'step']),
])
def test_config_errors_name_key_value_and_fix(kwargs, words):
    with pytest.raises(ValueError) as err:
        FluxBatchSampler(StridedSampler(8), batch_size=2, seed=0, **kwargs, **RELEASED)
    message = str(err.value)
    for word in words:
        assert word in message, message
    assert 'batch_sampler.' in message


def test_no_guessed_patch_or_tubelet_size():
    """Without the backbone's sizes the sampler is refused, naming the fix."""
    with pytest.raises(ValueError) as err:
        FluxBatchSampler(StridedSampler(8), batch_size=2, seed=0, patch_size=7)
    message = str(err.value)
    assert 'batch_sampler.tubelet_size not set' in message and 'FluxRunner' in message
    assert 'patch_size' not in message.split('not set')[0]


def test_backbone_geometry_fills_only_what_the_config_leaves_out():
    spec = dict(type='FluxBatchSampler', frames=(6, 13, 2), sides=(42, 71, 7))
    filled = with_backbone_geometry(spec, TokenGeometry(patch_size=7, tubelet_size=2))
    assert filled == dict(spec, patch_size=7, tubelet_size=2) and 'patch_size' not in spec
    own = dict(spec, patch_size=14)
    assert with_backbone_geometry(own, TokenGeometry(7, 2))['patch_size'] == 14
    other = dict(type='BatchSampler')  # not ours: left alone
    assert with_backbone_geometry(other, None) is other


def test_a_backbone_without_geometry_is_refused_by_name():
    """A backbone that cannot say its patch/tubelet size is named, not replaced by 14 x 1."""
    from mmaction.models import X3D
    backbone = X3D(gamma_w=1, gamma_b=1, gamma_d=1)
    spec = dict(type='FluxBatchSampler', frames=8, sides=224, tubelet_size=1)
    with pytest.raises(ValueError) as err:
        with_backbone_geometry(spec, backbone)
    message = str(err.value)
    assert message.startswith('train_dataloader.batch_sampler.patch_size not set')
    assert '(X3D)' in message and 'set batch_sampler.patch_size and tubelet_size' in message
