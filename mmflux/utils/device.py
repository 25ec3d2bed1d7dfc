"""Config adjustments for distributed runs on machines without CUDA."""
import torch
from mmengine.config import Config


def adapt_distributed_cfg(cfg: Config, launcher: str) -> Config:
    """CPU-only distributed runs: gloo backend and a DDP wrapper without device ids.

    mmengine defaults to NCCL and to ``device_ids=[local_rank]``, neither of which
    exists without CUDA. Nothing changes when CUDA is available or not distributed.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return cfg
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel'))
    wrapper.update(device_ids=None, broadcast_buffers=False)
    cfg.model_wrapper_cfg = wrapper
    return cfg


def use_zero_redundancy(cfg: Config) -> Config:
    """ZeRO stage 1: shard the optimizer state with mmengine's ZeroRedundancyOptimizer."""
    optimizer = dict(cfg.optim_wrapper.optimizer)
    if optimizer['type'] != 'ZeroRedundancyOptimizer':
        optimizer['optimizer_type'] = optimizer.pop('type')
        optimizer['type'] = 'ZeroRedundancyOptimizer'
    cfg.optim_wrapper.optimizer = optimizer
    return cfg
