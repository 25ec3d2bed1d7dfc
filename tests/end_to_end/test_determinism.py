"""Training randomness keyed by (seed, epoch, sample) and (seed, iteration), end to end.

A tiny model with every random part on (drop-path, Mixup/CutMix, clip erasing,
repeated augmentation, random crops) and a broken video to skip: the same seed gives
bit-identical losses in another process and with 2 dataloader workers; a run resumed
mid-epoch or at an epoch's edge, or killed with SIGKILL in epoch 2 and resumed with
``--resume``, logs exactly the uninterrupted run's losses.
"""
import os.path as osp
import signal

import pytest

from conftest import write_tiny_train_config
from robust_utils import build_video_set, run_tool, train_scalars

pytestmark = pytest.mark.slow

HERE = osp.dirname(osp.abspath(__file__))  # sigkill_hook.py, imported by the config

# 8 training videos (one of them broken, so skipping is covered too), batch 2:
# 4 iterations per epoch, 2 epochs, validation after each epoch, a checkpoint
# every 2 iterations (iter_2, iter_6: mid-epoch; iter_4: end of epoch 1).
EXTRA = """
custom_imports = dict(imports=['mmflux', 'sigkill_hook'], allow_failed_imports=False)
train_cfg = dict(max_epochs=2, val_begin=1, val_interval=1)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=2, by_epoch=False, max_keep_ckpts=10,
                                     save_best=None))
custom_hooks = [dict(type='FluxSamplerResumeHook'), dict(type='KeyedRandomHook'),
                dict(type='BadVideoCountHook'), dict(type='SigkillAtIterHook')]
"""
LOSS_KEYS = ('loss', 'loss_cls_0', 'loss_cls_1', 'loss_cls_2', 'loss_align_1', 'loss_align_2',
             'grad_norm', 'lr')
ENV = dict(PYTHONPATH=HERE + ':' + osp.dirname(osp.dirname(HERE)))
WORKERS_2 = ['--cfg-options', 'train_dataloader.num_workers=2']


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('determinism'))
    build_video_set(root, num_plain=7, bad=('truncated', ), good=(), ann_name='train.txt',
                    prefix='train')
    build_video_set(root, num_plain=2, bad=(), good=(), ann_name='val.txt', prefix='val')
    config = write_tiny_train_config(osp.join(root, 'cfg.py'), root,
                                     lists=('train.txt', 'val.txt', 'val.txt'),
                                     random_training=True, extra=EXTRA)

    def train(name, *extra, check=True, **env):
        work = osp.join(root, name)
        result = run_tool(['tools/train.py', config, '--work-dir', work, '--seed', '0'] +
                          list(extra), env=dict(ENV, **env), check=check)
        return work, result.stdout + result.stderr, result.returncode

    out = {}
    out['a'] = train('a')
    out['workers'] = train('workers', *WORKERS_2)
    out['mid'] = train('resume_mid', '--resume', osp.join(out['a'][0], 'iter_2.pth'))
    out['edge'] = train('resume_edge', '--resume', osp.join(out['a'][0], 'iter_4.pth'))
    out['mid_workers'] = train('resume_mid_workers', *WORKERS_2, '--resume',
                               osp.join(out['a'][0], 'iter_6.pth'))
    # killed right after iteration 5, in epoch 2 (iter_4 is the newest checkpoint), workers
    # and all; resumed without workers (the losses do not depend on them; a resume with
    # workers is the 'mid_workers' run)
    out['killed'] = train('killed', *WORKERS_2, check=False, MMFLUX_TEST_SIGKILL_AT='5')
    out['killed_scalars'] = train_scalars(out['killed'][0])
    out['resumed'] = train('killed', '--resume')
    return out


def losses(work, first_step=1, records=None):
    rows = {r['step']: r for r in (records if records is not None else train_scalars(work))}
    return {step: {k: rows[step][k] for k in LOSS_KEYS if k in rows[step]}
            for step in sorted(rows) if step >= first_step}


def test_same_seed_same_losses_with_any_worker_count(runs):
    a, workers = losses(runs['a'][0]), losses(runs['workers'][0])
    assert sorted(a) == list(range(1, 9))
    assert a == workers  # bit-identical floats, in another process, with 2 workers


@pytest.mark.parametrize('name,first', [('mid', 3), ('edge', 5)])
def test_resume_continues_exactly(runs, name, first):
    work, _, _ = runs[name]
    resumed = losses(work, first)
    assert sorted(resumed) == list(range(first, 9))
    assert resumed == losses(runs['a'][0], first)


def test_mid_epoch_resume_with_workers_continues_exactly(runs):
    """torch's multi-worker DataLoader calls iter(batch_sampler) twice; the skip must survive."""
    resumed = losses(runs['mid_workers'][0], 7)
    assert sorted(resumed) == [7, 8]
    assert resumed == losses(runs['a'][0], 7)


def test_sigkill_in_epoch_2_then_resume_continues_exactly(runs):
    assert runs['killed'][2] == -signal.SIGKILL
    # killed in iteration 5 of 8 (epoch 2), before the logger wrote it
    assert sorted(losses(None, records=runs['killed_scalars'])) == [1, 2, 3, 4]
    assert 'iter_4.pth' in runs['resumed'][1]  # --resume took the newest checkpoint
    resumed = losses(runs['killed'][0], 5)
    assert sorted(resumed) == [5, 6, 7, 8]
    assert resumed == losses(runs['a'][0], 5)


def test_training_checkpoints_resume_without_the_opt_in(runs):
    for name in ('mid', 'edge', 'resumed'):
        log = runs[name][1]
        assert 'resumed epoch' in log or 'resumed epoch:' in log
        assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' not in log  # torch warns when its opt-out is used


def test_skipped_video_is_counted_every_epoch(runs):
    log = runs['a'][1]
    assert log.count('skipped 1 videos this epoch') + log.count('skipped 2 videos this epoch') \
        >= 1
    assert 'truncated.mp4' in log


ITER_EXTRA = """
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='FluxBatchSampler', frames=(4, 9, 2), sides=(56, 71, 14),
                       token_window=(64, 200), patch_size=14, tubelet_size=1),
    collate_fn=dict(type='repeat_pseudo_collate'),
    dataset=dict(type='FluxVideoDataset', ann_file={ann!r}, data_prefix=dict(video={videos!r}),
                 num_repeats=2, pipeline={{{{_base_.train_pipeline}}}}))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=6, val_interval=100)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=3, by_epoch=False, save_best=None, max_keep_ckpts=10))
log_processor = dict(window_size=1, by_epoch=False)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=6)]
custom_hooks = [{hooks}dict(type='KeyedRandomHook'), dict(type='BadVideoCountHook')]
"""


@pytest.fixture(scope='module')
def iter_runs(tmp_path_factory):
    """IterBasedTrainLoop: mmengine replays the trained batches through the
    pipeline on resume; the keyed streams make that replay harmless. One
    uninterrupted run (with the sampler resume hook, as the configs run) is the
    reference of a resume with that hook and of one without it."""
    root = str(tmp_path_factory.mktemp('iter_determinism'))
    video_dir, ann, _ = build_video_set(root, num_plain=5, bad=('empty', ), good=())
    configs = {tag: write_tiny_train_config(
        osp.join(root, f'{tag}.py'), root, lists='list.txt', random_training=True,
        extra=ITER_EXTRA.format(ann=ann, videos=video_dir, hooks=hooks))
        for tag, hooks in (('plain', ''),
                           ('with_sampler_hook', "dict(type='FluxSamplerResumeHook'), "))}
    full = osp.join(root, 'full')
    run_tool(['tools/train.py', configs['with_sampler_hook'], '--work-dir', full, '--seed', '0',
              '--no-validate'])
    out = {'full': full}
    for tag, config in configs.items():
        out[tag] = osp.join(root, f'{tag}_resumed')
        run_tool(['tools/train.py', config, '--work-dir', out[tag], '--seed', '0', '--no-validate',
                  '--resume', osp.join(full, 'iter_3.pth')])
    return out


def test_iter_based_resume_continues_exactly(iter_runs):
    resumed = losses(iter_runs['plain'])
    assert sorted(resumed) == [4, 5, 6]
    assert resumed == losses(iter_runs['full'], 4)


def test_iter_based_resume_with_the_sampler_resume_hook(iter_runs):
    """As the configs run it (FluxSamplerResumeHook too). Note: that hook takes an
    IterBasedTrainLoop for an epoch-based one and logs 'skipping the 3 batches';
    the skip stays pending (the infinite sampler is never re-iterated), so the
    batches are mmengine's own advance and the losses still match."""
    assert losses(iter_runs['with_sampler_hook']) == losses(iter_runs['full'], 4)
