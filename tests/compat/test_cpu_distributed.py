"""mmflux.compat.cpu_distributed: CUDA-free distributed set-up, scoped to a block."""
import pytest
import torch
from mmengine.config import Config

from mmflux.compat.cpu_distributed import adapt_distributed_cfg, init_dist_without_cuda


@pytest.mark.skipif(torch.cuda.is_available(), reason='acts only without CUDA')
def test_set_device_is_a_no_op_inside_the_block_only():
    original = torch.cuda.set_device
    with init_dist_without_cuda():
        torch.cuda.set_device(3)  # would raise without CUDA
    assert torch.cuda.set_device is original
    with pytest.raises(Exception):
        torch.cuda.set_device(3)


@pytest.mark.skipif(torch.cuda.is_available(), reason='acts only without CUDA')
def test_restored_when_the_block_raises():
    original = torch.cuda.set_device
    with pytest.raises(ValueError):
        with init_dist_without_cuda():
            raise ValueError
    assert torch.cuda.set_device is original


@pytest.mark.skipif(torch.cuda.is_available(), reason='acts only without CUDA')
def test_distributed_cfg_on_cpus():
    cfg = Config(dict(model_wrapper_cfg=dict(type='MMDistributedDataParallel',
                                             find_unused_parameters=True)))
    adapt_distributed_cfg(cfg, 'pytorch')
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg == dict(type='MMDistributedDataParallel',
                                         find_unused_parameters=True, device_ids=None,
                                         broadcast_buffers=False)


def test_not_distributed_is_unchanged():
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    adapt_distributed_cfg(cfg, 'none')
    assert cfg.env_cfg.dist_cfg.backend == 'nccl' and 'model_wrapper_cfg' not in cfg
