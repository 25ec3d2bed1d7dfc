"""mmflux.compat.zero_redundancy: ZeRO-1 state is gathered for saving by the same steps on
every rank, and mmengine's optimizer is left as it was."""
import json
import os.path as osp

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.config import Config

from mmflux.compat.zero_redundancy import use_zero_redundancy, zero_state_gathered

WORLD = 2


def _rank_main(rank: int, tmp: str) -> None:
    dist.init_process_group('gloo', init_method=f'file://{tmp}/store', rank=rank,
                            world_size=WORLD)
    from mmengine.optim import OptimWrapper
    from mmengine.optim.optimizer.zero_optimizer import ZeroRedundancyOptimizer
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    optimizer = ZeroRedundancyOptimizer(model.parameters(), optimizer_type='SGD', lr=0.1,
                                        momentum=0.9)
    wrapper = OptimWrapper(optimizer)
    model(torch.ones(2, 4)).sum().backward()
    wrapper.step()
    with zero_state_gathered(wrapper):
        patched_inside = 'state_dict' in vars(optimizer)
        # rank 0 alone, as mmengine's master-only save_checkpoint calls it
        state = wrapper.state_dict() if rank == 0 else None
    restored = 'state_dict' not in vars(optimizer)
    full = optimizer.state_dict()  # mmengine's own method again: a collective on every rank
    with open(osp.join(tmp, f'rank{rank}.json'), 'w') as f:
        json.dump(dict(patched_inside=patched_inside, restored=restored,
                       states=None if state is None else len(state['state']),
                       momentum=None if state is None else sorted(
                           float(s['momentum_buffer'].abs().sum()) for s in
                           state['state'].values()),
                       full_states=len(full.get('state', {}))), f)
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
def test_state_gathered_on_every_rank_then_restored(tmp_path):
    mp.spawn(_rank_main, args=(str(tmp_path), ), nprocs=WORLD, join=True)
    ranks = [json.load(open(tmp_path / f'rank{r}.json')) for r in range(WORLD)]
    assert all(r['patched_inside'] and r['restored'] for r in ranks)  # same steps on each rank
    # rank 0 saw the state of all 4 parameters (2 weights + 2 biases), sharded over 2 ranks;
    # SGD's first momentum buffer is the gradient: |d sum(W2 (W1 x + b1) + b2)/d b2| = 2 per
    # output (batch of 2), so the b2 buffer sums to 2 * 2 = 4
    assert ranks[0]['states'] == 4 and 4.0 in [round(m, 5) for m in ranks[0]['momentum']]
    assert ranks[0]['full_states'] == 4 and ranks[1]['full_states'] == 0


def test_optimizer_without_zero_is_left_alone():
    from mmengine.optim import OptimWrapper
    model = torch.nn.Linear(2, 2)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    with zero_state_gathered(wrapper):
        assert 'state_dict' not in vars(wrapper.optimizer)
    with zero_state_gathered(None):  # a runner without an optimizer (test only)
        pass


def test_use_zero_redundancy_keeps_the_optimizer_arguments():
    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))))
    optimizer = use_zero_redundancy(cfg).optim_wrapper.optimizer
    assert optimizer == dict(type='ZeroRedundancyOptimizer', optimizer_type='AdamW', lr=1e-3,
                             weight_decay=0.05)
    assert use_zero_redundancy(cfg).optim_wrapper.optimizer == optimizer  # idempotent
