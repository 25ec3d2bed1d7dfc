"""Fault injection end to end: tools/train.py and tools/test.py on a list that
mixes broken videos with good (and unusual) ones."""
import glob
import json
import os.path as osp
import pickle
import re

import numpy as np
import pytest

from conftest import write_tiny_train_config
from robust_utils import BAD_KINDS, GOOD_KINDS, build_video_set, run_tool, train_scalars

pytestmark = pytest.mark.slow

@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('faults'))
    # 3 plain + 5 unusual-but-good + 4 broken = 12 videos = 6 batches of 2
    video_dir, _, bad = build_video_set(root, num_plain=3)
    # a dataloader worker for training: the skip records must reach the main process
    config = write_tiny_train_config(osp.join(root, 'cfg.py'), root, lists='list.txt',
                                     random_training=True, train_dataloader=dict(num_workers=1))
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
    assert f'evaluated 8 of 12 videos; {len(BAD_KINDS)} failed to load and were excluded' in log
    assert re.search(r'acc/num_evaluated: 8\s+acc/num_failed: 4', log)


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
    assert 'evaluated 8 of 12 videos; 4 failed to load and were excluded' in log
    metrics = json.load(open(out_json))['metrics']
    assert metrics['acc/num_failed'] == 4 and metrics['acc/num_evaluated'] == 8
    # the accuracy is over the evaluated videos only (recomputed from the dump)
    with open(dump, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 12
    evaluated = [p for p in preds if not p.get('failed')]
    assert len(evaluated) == 8
    top1 = np.mean([int(np.argmax(p['pred_score'].numpy())) == int(p['gt_label'])
                    for p in evaluated])
    assert abs(metrics['acc/top1'] - top1) < 1e-6
    failed = sorted(osp.basename(p['filename']) for p in preds if p.get('failed'))
    assert failed == sorted(trained['bad'])
