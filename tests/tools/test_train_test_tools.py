"""tools/train.py and tools/test.py: a config fault is refused right after merging (in
process); then training and testing on real (generated) videos, single and 2-process."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, load_tool, write_tiny_train_config


@pytest.fixture
def cfg(random_training_cfg):
    """The RANDOM_TRAINING config (conftest.py), loaded, for the test to break."""
    return random_training_cfg


def test_train_tool_checks_right_after_merging(cfg, tmp_path, monkeypatch):
    path = str(tmp_path / 'bad.py')
    cfg.dump(path)
    built = []
    tool = load_tool('train')
    monkeypatch.setattr(tool.Runner, 'from_cfg', classmethod(lambda cls, c: built.append(c)))
    with pytest.raises(ValueError, match=r'token_window=\(5000, 6000\)'):
        tool.main([path, '--work-dir', str(tmp_path / 'w'),
                   '--cfg-options', 'train_dataloader.batch_sampler.token_window=(5000,6000)'])
    assert not built  # refused before any runner was built


def test_test_tool_checks_the_budget(cfg, tmp_path, monkeypatch):
    path = str(tmp_path / 'ok.py')
    cfg.dump(path)
    tool = load_tool('test')
    monkeypatch.setattr(tool.Runner, 'from_cfg', classmethod(lambda cls, c: pytest.fail('built')))
    with pytest.raises(ValueError, match='model.test_cfg.token_budget=100000'):
        tool.main([path, 'unused.pth', '--budget', '100000', '--work-dir', str(tmp_path / 'w')])


def run(cmd, **kwargs):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, env=env, **kwargs)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


@pytest.fixture(scope='module')
def trained(tiny_motion_data, tmp_path_factory):
    work = tmp_path_factory.mktemp('train')
    config = write_tiny_train_config(work, tiny_motion_data,
                                     custom_hooks=[dict(type='FluxSamplerResumeHook'),
                                                   dict(type='FluxGridRecordHook', save_jsonl=True)])
    run([sys.executable, 'tools/train.py', config, '--work-dir', str(work / 'run'), '--seed', '0'])
    checkpoints = glob.glob(str(work / 'run' / 'epoch_1.pth'))
    assert checkpoints, os.listdir(work / 'run')
    return config, checkpoints[0], work


@pytest.mark.slow
def test_train_logs_every_flux_multi_term(trained):
    _, _, work = trained
    logs = glob.glob(str(work / 'run' / '*' / 'vis_data' / 'scalars.json'))
    assert logs
    with open(logs[0]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    train = [r for r in records if 'loss' in r]
    assert len(train) == 8  # 16 videos / batch 2, drop_last
    for key in ('loss_cls_0', 'loss_cls_1', 'loss_cls_2', 'loss_align_1', 'loss_align_2'):
        assert all(key in r for r in train), key
    grids = [json.loads(line) for line in open(work / 'run' / 'flux_grids_rank0.jsonl')]
    assert len(grids) == 8
    for g in grids:
        assert 16 <= g['frames'] * (g['height'] // 14)**2 <= 64
        assert g['batch'] == 4  # 2 videos x 2 repeated augmentations


@pytest.mark.slow
@pytest.mark.parametrize('budget', ['16', 'all'])
def test_test_tool_at_two_budgets(trained, budget):
    config, checkpoint, work = trained
    out = work / f'metrics_{budget}.json'
    run([sys.executable, 'tools/test.py', config, checkpoint, '--budget', budget, '--grid', '4', '56',
         '--work-dir', str(work / f'test_{budget}'), '--out-json', str(out)])
    metrics = json.loads(out.read_text())
    assert metrics['budget'] == (None if budget == 'all' else int(budget))
    assert 0.0 <= metrics['metrics']['acc/top1'] <= 1.0
    assert metrics['grid'] == [4, 56]


@pytest.mark.slow
def test_test_tool_refuses_a_checkpoint_of_another_head(trained):
    # mmengine alone would warn and test a randomly initialised classifier
    config, checkpoint, work = trained
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, 'tools/test.py', config, checkpoint, '--work-dir',
                             str(work / 'test_mismatch'), '--cfg-options', 'num_classes=9'],
                            capture_output=True, text=True, cwd=REPO_ROOT, env=env)
    assert result.returncode != 0
    assert f'{checkpoint} does not fit the model' in result.stderr
    assert 'cls_head' in result.stderr and 'Fix:' in result.stderr


@pytest.mark.slow
def test_two_process_training_shares_grids(tiny_motion_data, tmp_path):
    config = write_tiny_train_config(tmp_path, tiny_motion_data,
                                     custom_hooks=[dict(type='FluxSamplerResumeHook'),
                                                   dict(type='FluxGridRecordHook', save_jsonl=True)])
    work = tmp_path / 'dist'
    env_port = str(29500 + os.getpid() % 1000)
    result = subprocess.run(['bash', 'tools/dist_train.sh', config, '2', '--work-dir', str(work),
                             '--no-validate', '--zero'],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=600,
                            env=dict(os.environ, PORT=env_port, OMP_NUM_THREADS='1',
                                     PYTHON=sys.executable))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    rank0 = [json.loads(line) for line in open(work / 'flux_grids_rank0.jsonl')]
    rank1 = [json.loads(line) for line in open(work / 'flux_grids_rank1.jsonl')]
    assert len(rank0) == len(rank1) == 4  # 16 videos / 2 ranks / batch 2
    assert [(g['iter'], g['frames'], g['height']) for g in rank0] == \
        [(g['iter'], g['frames'], g['height']) for g in rank1]
    assert len({(g['frames'], g['height']) for g in rank0}) > 1  # the grid does change
    assert osp.exists(work / 'epoch_1.pth')
    # ZeRO-1: rank 0 saved the state of every parameter, gathered from both ranks' shards
    from mmflux.compat import safe_load_checkpoint
    optimizer = safe_load_checkpoint(str(work / 'epoch_1.pth'))['optimizer']
    params = [p for group in optimizer['param_groups'] for p in group['params']]
    assert len(params) > 2 and sorted(optimizer['state']) == sorted(params)


@pytest.mark.slow
def test_bf16_autocast_training_on_cpu(tiny_motion_data, tmp_path):
    config = write_tiny_train_config(tmp_path, tiny_motion_data)
    run([sys.executable, 'tools/train.py', config, '--work-dir', str(tmp_path / 'amp'), '--amp',
         '--no-validate', '--cfg-options', 'train_dataloader.dataset.indices=8'])
    logs = glob.glob(str(tmp_path / 'amp' / '*' / 'vis_data' / 'scalars.json'))
    losses = [json.loads(line)['loss'] for line in open(logs[0]) if '"loss"' in line]
    assert len(losses) == 4 and all(l == l and 0 < l < 20 for l in losses)  # finite, sane
