"""tools/train.py and tools/test.py: a config fault is refused right after merging (in
process); then training and testing on real (generated) videos, single and 2-process."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

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
def trained(tiny_trained):
    """(config, checkpoint, work dir) of the session's tiny training run (conftest.py)."""
    return tiny_trained


@pytest.mark.slow
def test_train_logs_every_flux_multi_term(trained):
    _, _, work = trained
    logs = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    assert logs
    with open(logs[0]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    train = [r for r in records if 'loss' in r]
    assert len(train) == 8  # 16 videos / batch 2, drop_last
    for key in ('loss_cls_0', 'loss_cls_1', 'loss_cls_2', 'loss_align_1', 'loss_align_2'):
        assert all(key in r for r in train), key
    grids = [json.loads(line) for line in open(osp.join(work, 'flux_grids_rank0.jsonl'))]
    assert len(grids) == 8
    for g in grids:
        assert 16 <= g['frames'] * (g['height'] // 14)**2 <= 64
        assert g['batch'] == 4  # 2 videos x 2 repeated augmentations


def scores_by_inference_api(config, checkpoint):
    """[(class scores, label)] from MMAction2's own ``init_recognizer`` /
    ``inference_recognizer`` for every video of the config's test list, in its order:
    the oracle of the test tool's runner, evaluator and metric."""
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmaction.apis import inference_recognizer, init_recognizer
    cfg = Config.fromfile(config)
    model = init_recognizer(cfg, checkpoint, device='cpu')
    pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
    root = cfg.test_dataloader.dataset.data_prefix.video
    out = []
    for line in open(cfg.test_dataloader.dataset.ann_file).read().split('\n'):
        if line.strip():
            name, label = line.split()
            sample = inference_recognizer(model, osp.join(root, name), test_pipeline=pipeline)
            out.append((sample.pred_score, int(label)))
    return out


@pytest.mark.slow
def test_test_tool_at_two_budgets(trained, tmp_path):
    """The tool's top-1 at 16 tokens and at all 64 (4 frames x 4 x 4 patches) equals
    the top-1 counted here from MMAction2's inference API on the config the tool ran
    (the budget and the grid as asked, the checkpoint's weights)."""
    import pickle
    from mmengine.config import Config
    config, checkpoint, _ = trained
    scores = {}
    for budget in ('16', 'all'):
        work, out, dump = tmp_path / budget, tmp_path / f'{budget}.json', tmp_path / f'{budget}.pkl'
        run([sys.executable, 'tools/test.py', config, checkpoint, '--budget', budget, '--grid', '4',
             '56', '--work-dir', str(work), '--out-json', str(out), '--dump', str(dump)])
        metrics = json.loads(out.read_text())
        assert metrics['budget'] == (None if budget == 'all' else int(budget))
        assert metrics['grid'] == [4, 56]
        ran = Config.fromfile(str(work / osp.basename(config)))  # the config the runner dumped
        assert ran.model.test_cfg.token_budget == metrics['budget']
        assert [s.clip_len for s in ran.test_dataloader.dataset.pipeline
                if s.type == 'FluxUniformSample'] == [4]
        oracle = scores_by_inference_api(str(work / osp.basename(config)), checkpoint)
        dumped = pickle.load(open(dump, 'rb'))  # in the test list's order
        assert len(dumped) == len(oracle) == 8
        for row, (score, label) in zip(dumped, oracle):
            assert int(row['gt_label']) == label
            torch.testing.assert_close(row['pred_score'], score, rtol=1e-4, atol=1e-5)
        hits = [int(s.argmax()) == label for s, label in oracle]
        assert metrics['metrics']['acc/top1'] == pytest.approx(sum(hits) / len(hits), abs=1e-6)
        scores[budget] = torch.stack([s for s, _ in oracle])
    # the budget reached the model: 16 of 64 tokens gives other scores than all 64
    assert not torch.allclose(scores['16'], scores['all'], atol=1e-3)


@pytest.mark.slow
def test_test_tool_refuses_a_checkpoint_of_another_head(trained, tmp_path):
    # mmengine alone would warn and test a randomly initialised classifier
    config, checkpoint, _ = trained
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, 'tools/test.py', config, checkpoint, '--work-dir',
                             str(tmp_path / 'test_mismatch'), '--cfg-options', 'num_classes=9'],
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


#: the probe hook (autocast_probe_hook.py, beside this file) added to a trained config
AMP_EXTRA = """
custom_imports = dict(imports=['mmflux', 'autocast_probe_hook'], allow_failed_imports=False)
custom_hooks = [dict(type='FluxSamplerResumeHook'), dict(type='FluxGridRecordHook', save_jsonl=True),
                dict(type='AutocastProbeHook')]
"""


@pytest.mark.slow
def test_bf16_autocast_training_on_cpu(trained, tmp_path):
    """``--amp`` trains the session's run again under bf16 autocast: the linear layers
    compute in bf16, and the losses follow the fp32 run's within bf16's precision (its
    8-bit mantissa: ~0.4% per rounding) but are not the fp32 floats."""
    from robust_utils import run_tool, train_scalars
    config, _, fp32_work = trained
    amp_config = tmp_path / 'amp.py'
    amp_config.write_text(f'_base_ = [{config!r}]\n' + AMP_EXTRA)
    work = str(tmp_path / 'amp')
    run_tool(['tools/train.py', str(amp_config), '--work-dir', work, '--amp', '--no-validate',
              '--seed', '0'], env=dict(PYTHONPATH=osp.dirname(__file__) + ':' + REPO_ROOT))
    seen = json.load(open(osp.join(work, 'autocast_probe.json')))
    assert seen == [['torch.bfloat16', True]]  # every linear output of every step
    fp32 = {r['step']: r['loss'] for r in train_scalars(fp32_work)}
    bf16 = {r['step']: r['loss'] for r in train_scalars(work)}
    assert sorted(bf16) == sorted(fp32) == list(range(1, 9))
    # step 1: the same weights and batch, only the arithmetic differs (measured: 3e-4
    # relative on a Xeon Sapphire Rapids); later steps start from slightly other weights
    assert bf16[1] != fp32[1]
    for step in fp32:
        assert bf16[step] == pytest.approx(fp32[step], rel=1e-2), step
