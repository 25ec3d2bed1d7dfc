"""The configs' lr schedules follow ``train_cfg.max_epochs`` when it is overridden.

mmengine's cosine reaches ``eta_min`` at step ``T_max``; the last training
iteration runs at step ``T_max - 1``, so that is the lr checked, with ``T_max`` the
cosine part of the *overridden* run: ``(max_epochs - warmup) * iterations/epoch``.
"""
import logging
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from conftest import REPO_ROOT

CONFIGS = ('configs/fluxvit/fluxvit-tiny_synthetic.py', 'configs/fluxvit/fluxvit-s14_k400.py')


class ToyDataset(torch.utils.data.Dataset):
    metainfo = dict(name='toy')

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return dict(inputs=torch.ones(1))


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return dict(loss=(self.w * torch.stack(inputs)).sum())


ITERS_PER_EPOCH = 3  # 6 samples, batch 2


def final_lr(config, max_epochs, work_dir):
    cfg = Config.fromfile(osp.join(REPO_ROOT, config))
    optimizer = dict(cfg.optim_wrapper.optimizer)
    runner = Runner(
        model=ToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=ToyDataset(), batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=optimizer),
        param_scheduler=cfg.param_scheduler,
        default_hooks=dict(logger=dict(type='LoggerHook', interval=100), checkpoint=None),
        default_scope='mmaction', log_level=logging.WARNING)
    runner.train()
    return runner.optim_wrapper.param_groups[0]['lr'], cfg


@pytest.mark.parametrize('config', CONFIGS)
@pytest.mark.parametrize('max_epochs', [3, 7])
def test_cosine_ends_at_eta_min_for_any_max_epochs(config, max_epochs, tmp_path):
    lr, cfg = final_lr(config, max_epochs, tmp_path)
    cosine = [s for s in cfg.param_scheduler if s['type'] == 'CosineToEndLR'][0]
    assert cfg.train_cfg.max_epochs != max_epochs  # an override, not the config's own value
    steps = (max_epochs - cosine['begin']) * ITERS_PER_EPOCH
    base, eta_min = cfg.optim_wrapper.optimizer.lr, cosine['eta_min']
    expected = eta_min + (base - eta_min) * (1 + math.cos(math.pi * (steps - 1) / steps)) / 2
    assert lr == pytest.approx(expected, rel=1e-6)
    assert lr < eta_min + 0.1 * (base - eta_min)  # annealed, not stopped half-way


@pytest.mark.parametrize('config', CONFIGS)
def test_a_run_no_longer_than_the_warmup_has_no_cosine_phase(config, tmp_path):
    lr, cfg = final_lr(config, 1, tmp_path)  # mmengine alone refuses end == begin here
    assert lr == pytest.approx(cfg.optim_wrapper.optimizer.lr, rel=1e-6)  # warmup ended
