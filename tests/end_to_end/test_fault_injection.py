"""Fault injection end to end: tools/train.py and tools/test.py on a list that
mixes broken videos with good (and unusual) ones."""
import glob
import json
import os
import os.path as osp
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import write_tiny_train_config
from robust_utils import (BAD_KINDS, GOOD_KINDS, REPO_ROOT, build_video_set, run_tool,
                          train_scalars)

pytestmark = pytest.mark.slow

@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('faults'))
    # 2 plain + 5 unusual-but-good + 5 broken = 12 videos = 6 batches of 2
    video_dir, _, bad = build_video_set(root, num_plain=2)
    # dataloader workers for training: the skip records must reach the main process, and a
    # decoder crash (truncated_avi) must not kill a worker
    config = write_tiny_train_config(osp.join(root, 'cfg.py'), root, lists='list.txt',
                                     random_training=True, train_dataloader=dict(num_workers=2))
    work = osp.join(root, 'work')
    result = run_tool(['tools/train.py', config, '--work-dir', work, '--seed', '0'])
    return dict(root=root, video_dir=video_dir, config=config, work=work, bad=bad,
                log=result.stdout + result.stderr)


def test_training_completes(trained):
    assert osp.isfile(osp.join(trained['work'], 'epoch_1.pth'))
    assert len(train_scalars(trained['work'])) == 6  # every batch trained


def test_every_broken_file_is_named_and_counted(trained):
    log, video_dir = trained['log'], trained['video_dir']
    skips = re.findall(r'WARNING - skipped (\S+): (.+)', log)
    skipped_paths = [p for p, _ in skips]
    for name in trained['bad']:
        assert osp.join(video_dir, name) in skipped_paths, name
    for kind in GOOD_KINDS:  # unusual but valid videos are trained on, not skipped
        assert osp.join(video_dir, f'{kind}.mp4') not in skipped_paths
    summary = re.findall(r'skipped (\d+) videos this epoch: (\[.*\])', log)
    assert len(summary) == 1
    count, names = int(summary[0][0]), summary[0][1]
    assert count == len(skips)  # each skip counted once, across the worker boundary
    for name in trained['bad']:
        assert osp.join(video_dir, name) in names
    # the count is in the run's log file as well
    log_files = glob.glob(osp.join(trained['work'], '*', '*.log'))
    assert log_files and f'skipped {count} videos this epoch' in open(log_files[0]).read()


def test_validation_excludes_the_broken_videos(trained):
    log = trained['log']
    assert f'evaluated 7 of 12 videos; {len(BAD_KINDS)} failed to load and were excluded' in log
    assert re.search(r'acc/num_evaluated: 7\s+acc/num_failed: 5', log)


def test_testing_reports_and_excludes(trained):
    root, video_dir = trained['root'], trained['video_dir']
    out_json = osp.join(root, 'metrics.json')
    dump = osp.join(root, 'preds.pkl')
    result = run_tool(['tools/test.py', trained['config'], osp.join(trained['work'], 'epoch_1.pth'),
                       '--work-dir', osp.join(root, 'test'), '--out-json', out_json,
                       '--dump', dump])
    log = result.stdout + result.stderr
    for name in trained['bad']:
        path = osp.join(video_dir, name)
        assert f'failed {path}: ' in log  # named when it fails to load
        assert f'excluded {path}: ' in log  # and by the metric
    assert 'evaluated 7 of 12 videos; 5 failed to load and were excluded' in log
    metrics = json.load(open(out_json))['metrics']
    assert metrics['acc/num_failed'] == 5 and metrics['acc/num_evaluated'] == 7
    # the accuracy is over the evaluated videos only (recomputed from the dump)
    with open(dump, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 12
    evaluated = [p for p in preds if not p.get('failed')]
    assert len(evaluated) == 7
    top1 = np.mean([int(np.argmax(p['pred_score'].numpy())) == int(p['gt_label'])
                    for p in evaluated])
    assert abs(metrics['acc/top1'] - top1) < 1e-6
    failed = sorted(osp.basename(p['filename']) for p in preds if p.get('failed'))
    assert failed == sorted(trained['bad'])


# ------------------------------------------------------------ results and inputs
HERE = osp.dirname(osp.abspath(__file__))  # full_disk.py, imported by the config


def test_full_disk_loses_no_metrics(trained):
    """The dump fails on a full disk: the metrics are logged and written first, the
    error names the file and the cause, and no partial or empty file is left."""
    root = trained['root']
    config = osp.join(root, 'full_disk_cfg.py')
    with open(config, 'w') as f:
        f.write(f"_base_ = [{trained['config']!r}]\n"
                "custom_imports = dict(imports=['mmflux', 'full_disk'], allow_failed_imports=False)\n")
    env = dict(PYTHONPATH=HERE + ':' + osp.dirname(osp.dirname(HERE)))
    ckpt = osp.join(trained['work'], 'epoch_1.pth')
    out_json, dump = osp.join(root, 'full', 'metrics.json'), osp.join(root, 'full', 'preds.pkl')
    result = run_tool(['tools/test.py', config, ckpt, '--work-dir', osp.join(root, 'full'),
                       '--out-json', out_json, '--dump', dump],
                      env=dict(env, MMFLUX_TEST_FULL_DISK='.pkl.partial'), check=False)
    assert result.returncode == 1
    assert re.search(r'acc/top1: [0-9.]+', result.stdout + result.stderr)  # logged
    assert (f'could not write the predictions to {dump}: No space left on device (ENOSPC)'
            in result.stderr)
    assert f'Saved: {out_json}' in result.stderr
    assert json.load(open(out_json))['metrics']['acc/num_evaluated'] == 7
    assert not glob.glob(dump + '*')  # no preds.pkl, empty or partial
    # the metrics file itself on a full disk: printed instead, the dump still written
    result = run_tool(['tools/test.py', config, ckpt, '--work-dir', osp.join(root, 'full'),
                       '--out-json', out_json + '2', '--dump', dump],
                      env=dict(env, MMFLUX_TEST_FULL_DISK='.json2.partial'), check=False)
    assert result.returncode == 1
    assert f'could not write the metrics to {out_json}2: No space left on device' in result.stderr
    assert '"acc/num_evaluated": 7.0' in result.stderr
    assert not osp.exists(out_json + '2') and not osp.exists(out_json + '2.partial')
    with open(dump, 'rb') as f:
        assert len(pickle.load(f)) == 12


def test_truncated_checkpoint_and_corrupt_plan_are_named(trained, tmp_path):
    ckpt = osp.join(trained['work'], 'epoch_1.pth')
    cut = str(tmp_path / 'cut.pth')
    with open(ckpt, 'rb') as f, open(cut, 'wb') as g:
        g.write(f.read()[:os.path.getsize(ckpt) // 2])
    result = run_tool(['tools/test.py', trained['config'], cut, '--work-dir', str(tmp_path)],
                      check=False)
    assert result.returncode != 0
    assert f'checkpoint {cut} is truncated' in result.stderr and 'fix:' in result.stderr
    plan = str(tmp_path / 'plan.json')
    with open(plan, 'w') as f:
        f.write('{"format": "mmflux')
    result = run_tool(['tools/test.py', trained['config'], ckpt, '--plan', plan, '--budget', '32',
                       '--work-dir', str(tmp_path)], check=False)
    assert result.returncode != 0
    assert f'token_optimization.plan={plan}: not a readable JSON plan' in result.stderr
    assert 'tools/token_optimize.py' in result.stderr


def test_negative_test_label_refused_before_testing(trained, tmp_path):
    listing = str(tmp_path / 'test_list.txt')
    with open(listing, 'w') as f:
        f.write('plain_0.mp4 1\nplain_1.mp4 -1\n')
    result = run_tool(['tools/test.py', trained['config'], osp.join(trained['work'], 'epoch_1.pth'),
                       '--work-dir', str(tmp_path), '--cfg-options',
                       f'test_dataloader.dataset.ann_file={listing}'], check=False)
    assert result.returncode != 0
    assert (f"annotation file {listing}: 1 bad line(s):\n  line 2: 'plain_1.mp4 -1': label -1 is "
            'negative; fix:') in result.stderr
    assert 'Epoch(test)' not in result.stdout + result.stderr


def test_second_run_on_a_busy_work_dir_is_refused(trained, tmp_path):
    work = str(tmp_path / 'busy')
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys, time\n'
         'from mmflux.engine.runner.work_dir_lock import WorkDirLock\n'
         'WorkDirLock(sys.argv[1]).acquire(); print("held", flush=True); time.sleep(600)', work],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    try:
        assert holder.stdout.readline().strip() == 'held'
        result = run_tool(['tools/train.py', trained['config'], '--work-dir', work], check=False)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode != 0
    assert f'work dir {work} is in use by another training run (pid {holder.pid} on host' \
        in result.stderr
    assert not glob.glob(osp.join(work, '*.pth'))  # it wrote nothing
