"""Training randomness keyed by (seed, epoch, sample) and (seed, iteration), end to end.

A tiny model with every random part on (drop-path, Mixup/CutMix, clip erasing,
repeated augmentation, random crops): the logged losses do not depend on the
number of dataloader workers, and a run killed with SIGKILL in epoch 2 and
resumed with ``--resume`` logs exactly the uninterrupted run's losses.
"""
import glob
import json
import os.path as osp
import signal

import pytest

from conftest import write_tiny_train_config
from robust_utils import build_video_set, run_tool, train_scalars

pytestmark = pytest.mark.slow

HERE = osp.dirname(osp.abspath(__file__))  # sigkill_hook.py, imported by the config

# 6 videos, batch 2: 3 iterations per epoch, 3 epochs; a checkpoint per epoch
EXTRA = """
custom_imports = dict(imports=['mmflux', 'sigkill_hook'], allow_failed_imports=False)
train_cfg = dict(max_epochs=3, val_begin=1, val_interval=1)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, max_keep_ckpts=5, save_best=None))
custom_hooks = [dict(type='FluxSamplerResumeHook'), dict(type='KeyedRandomHook'),
                dict(type='SigkillAtIterHook')]
"""
KEYS = ('loss', 'loss_cls_0', 'loss_cls_1', 'loss_cls_2', 'loss_align_1', 'loss_align_2',
        'grad_norm', 'lr')


def losses(records):
    return {r['step']: {k: r[k] for k in KEYS if k in r} for r in records}


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('keyed'))
    build_video_set(root, num_plain=6, bad=(), good=())
    env = dict(PYTHONPATH=HERE + ':' + osp.dirname(osp.dirname(HERE)))
    out = {}
    for workers in (0, 2):
        config = write_tiny_train_config(osp.join(root, f'w{workers}.py'), root, lists='list.txt',
                                         random_training=True,
                                         train_dataloader=dict(num_workers=workers), extra=EXTRA)
        work = osp.join(root, f'w{workers}')
        run_tool(['tools/train.py', config, '--work-dir', work, '--seed', '0'], env=env)
        out[workers] = losses(train_scalars(work))
    work = osp.join(root, 'killed')
    killed = run_tool(['tools/train.py', config, '--work-dir', work, '--seed', '0'],
                      env=dict(env, MMFLUX_TEST_SIGKILL_AT='5'), check=False)
    out['killed_rc'] = killed.returncode
    out['before_kill'] = losses(train_scalars(work))
    run_tool(['tools/train.py', config, '--work-dir', work, '--seed', '0', '--resume'], env=env)
    newest = sorted(glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json')))[-1]
    with open(newest) as f:  # the resumed run's own log only
        out['resumed'] = losses(r for r in map(json.loads, f) if 'loss' in r)
    return out


def test_losses_do_not_depend_on_the_workers(runs):
    assert sorted(runs[0]) == list(range(1, 10))
    assert runs[0] == runs[2]  # bit-identical floats


def test_sigkill_in_epoch_2_then_resume_continues_exactly(runs):
    assert runs['killed_rc'] == -signal.SIGKILL
    # killed in iteration 5 of 9 (epoch 2), before the logger wrote it
    assert sorted(runs['before_kill']) == [1, 2, 3, 4]
    assert sorted(runs['resumed']) == [4, 5, 6, 7, 8, 9]  # resumed at epoch 2's start
    assert runs['resumed'] == {s: runs[2][s] for s in range(4, 10)}
