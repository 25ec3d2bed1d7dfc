"""Resume an EpochBasedTrainLoop mid-epoch and compare with an uninterrupted run."""
import logging
import os.path as osp

import pytest
import torch
from torch import nn

import mmflux  # noqa: F401
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmflux.datasets import FluxBatchSampler
from mmflux.engine import FluxSamplerResumeHook

SEEN = []


class EchoDataset(torch.utils.data.Dataset):
    metainfo = dict(name='echo')

    def __len__(self):
        return 24

    def __getitem__(self, key):
        return dict(inputs=torch.zeros(1), data_samples=torch.tensor(key))


class RecordingModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        SEEN.append(tuple(tuple(x.tolist()) for x in data_samples))
        return dict(loss=self.w.sum() * 0.0)


def make_runner(work_dir, resume_from=None):
    return Runner(
        model=RecordingModel(),
        work_dir=str(work_dir),
        experiment_name=osp.basename(str(work_dir)),
        train_dataloader=dict(
            dataset=EchoDataset(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_sampler=dict(type='FluxBatchSampler', patch_size=14, tubelet_size=1),
            batch_size=4,
            num_workers=0,
            collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=3),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=100),
            checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False)),
        custom_hooks=[dict(type='FluxSamplerResumeHook')],
        default_scope='mmaction',
        load_from=resume_from,
        resume=resume_from is not None,
        log_level=logging.WARNING)


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('full')
    SEEN.clear()
    runner = make_runner(work_dir)
    assert isinstance(runner.train_dataloader.batch_sampler, FluxBatchSampler)
    runner.train()
    assert runner.iter == 18 and runner.epoch == 3
    return work_dir, list(SEEN)


def test_uninterrupted_run_uses_flux_grids(uninterrupted):
    _, seen = uninterrupted
    assert len(seen) == 18
    for batch in seen:
        assert len(batch) == 4 and len({x[1:3] for x in batch}) == 1
    for epoch in range(3):  # every epoch is a permutation of the dataset
        indices = sorted(x[0] for batch in seen[6 * epoch:6 * epoch + 6] for x in batch)
        assert indices == list(range(24))


@pytest.mark.parametrize('iteration', [8, 12, 16])
def test_mid_epoch_resume_matches_the_uninterrupted_tail(uninterrupted, tmp_path,
                                                         iteration, monkeypatch):
    work_dir, seen = uninterrupted
    # resume goes through mmflux's safe loader without torch's opt-out
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    checkpoint = osp.join(str(work_dir), f'iter_{iteration}.pth')
    SEEN.clear()
    # no randomness seed in the config: the new runner draws another seed, the
    # hook restores the sampler seeds from the checkpoint
    runner = make_runner(tmp_path / f'resume{iteration}', resume_from=checkpoint)
    runner.train()
    assert list(SEEN) == seen[iteration:]
    assert runner.iter == 18 and runner.epoch == 3


def test_hook_without_flux_sampler_is_a_no_op():
    hook = FluxSamplerResumeHook()

    class FakeRunner:
        train_loop = None
        iter = 5

    hook.before_train(FakeRunner())
    checkpoint = dict(meta={})
    hook.before_save_checkpoint(FakeRunner(), checkpoint)
    assert checkpoint == dict(meta={})
