"""The reduced replication runs end to end, and its report is reproducible from its predictions."""
import glob
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from mmengine.config import Config

from conftest import REPO_ROOT, load_tool


def replicate(*args, timeout=1200):
    result = subprocess.run([sys.executable, 'tools/replicate_flux.py', *map(str, args)],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_quick_replication_is_reproducible(tmp_path):
    out, data = tmp_path / 'out', tmp_path / 'data'
    replicate('--quick', '--out', out, '--data', data, '--jobs', '2')  # two runs at a time
    state = json.loads((out / 'results.json').read_text())
    assert state['finished'] and set(state['runs']) == {
        'fixed/seed0', 'fixed/seed1', 'flux_multi/seed0', 'flux_multi/seed1'}
    labels = np.array(state['setup']['labels'])
    budgets = state['setup']['budgets']
    for run in state['runs'].values():
        cells = run['cells']
        # every budget, method and random draw has one prediction per test video
        assert len(cells) == 2 * 4 + 3 * (1 + state['setup']['draws'])  # grid + TO; gd + draws
        for key, cell in cells.items():
            assert len(cell['pred']) == len(labels), key
            fraction, method = key.split(':')[:2]
            if method != 'grid':
                assert cell['kept'] == budgets[fraction], key  # exactly the budget
        compute = run['compute']
        assert compute['steps'] > 0 and compute['token_passes'] == (
            compute['steps'] * compute['batch_size'] * compute['tokens_per_clip'])
    # every run fine-tunes the one pretrained FluxViT: its config names the checkpoint and
    # the training log shows it loaded (the pretraining data is other videos, 9 classes)
    pre = state['pretrained']['fluxvit']
    assert set(state['pretrained']) == {'fluxvit'} and pre['classes'] == 9
    meta = [json.loads((tmp_path / d / 'meta.json').read_text()) for d in ('data', 'data_pretrain')]
    assert meta[0]['seed'] != meta[1]['seed'] and len(meta[1]['classes']) == 9
    first = 'videos/train_00000.mp4'
    assert (data / first).read_bytes() != (tmp_path / 'data_pretrain' / first).read_bytes()
    pre_ckpt = osp.normpath(osp.join(REPO_ROOT, pre['checkpoint']))
    for name, run in state['runs'].items():
        cfg = Config.fromfile(osp.join(REPO_ROOT, run['config']))
        assert cfg.model.backbone.init_cfg.checkpoint == pre_ckpt
        log, = glob.glob(str(out / 'runs' / name.replace('/', '_') / '*' / '*.log'))
        assert f'load backbone. in model from: {pre_ckpt}' in open(log).read()
    # the report is a function of the saved predictions: --report-only writes it again, identically
    first = (out / 'results.md').read_text()
    (out / 'results.md').unlink()
    replicate('--quick', '--out', out, '--data', data, '--report-only')
    assert (out / 'results.md').read_text() == first
    assert '## Like-for-like' in first and "## The paper's claims" in first
    # every saved prediction (random draws included) comes out again from the checkpoints
    assert 'every prediction of 4 runs reproduced' in replicate('--quick', '--out', out, '--verify')
    # --resume keeps the finished runs: nothing is trained again
    again = replicate('--quick', '--out', out, '--data', data, '--resume')
    assert again.count('kept from') == 5 and '] train ' not in again  # 4 runs + the pretraining


def test_verify_fails_when_a_prediction_changed(tmp_path):
    module = load_tool('replicate_flux')
    rep = module.Replication(module.parse_args(['--out', str(tmp_path), '--verify']))
    saved = dict(setup=dict(budgets={'1': 256}, videos=['a.mp4'], draws=1, to_frames=[8],
                            to_sides=[56]),
                 runs={'fixed/seed0': dict(config='c.py', checkpoint='c.pth',
                                           cells={'1:grid': dict(pred='0')})})
    rep.evaluate = lambda config, ckpt: {'1:grid': dict(pred='1')}
    with pytest.raises(SystemExit, match='1 settings predict differently'):
        rep.verify(saved)


def test_relative_output_paths_are_made_absolute():
    # generated configs name their bases by path; a relative --out once broke every run
    import os.path as osp
    module = load_tool('replicate_flux')
    args = module.parse_args(['--out', 'work_dirs/x', '--data', 'data/y'])
    assert args.out == osp.abspath('work_dirs/x') and args.data == osp.abspath('data/y')


def test_report_only_needs_a_run(tmp_path):
    module = load_tool('replicate_flux')
    with pytest.raises(SystemExit, match='run the replication first'):
        module.Replication(module.parse_args(['--out', str(tmp_path), '--report-only'])).main()


def test_every_run_config_builds_with_exact_budgets(tmp_path):
    # the CI run trains two of the ten runs; the others must at least build
    import mmflux  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmaction.registry import MODELS
    module = load_tool('replicate_flux')
    rep = module.Replication(module.parse_args(['--out', str(tmp_path)]))
    rep.num_classes = 9
    init_default_scope('mmaction')
    specs = rep.run_specs()
    assert {'fixed', 'flux_single', 'flux_multi', 'flux_multi_no_align', 'multi_fixed', 'direct_128',
            'direct_64', 'direct_32', 'vit_fixed', 'vit_flux_multi'} == set(specs)
    for name, spec in specs.items():
        cfg = Config.fromfile(rep.write_config(name, spec))
        model = MODELS.build(cfg.model)
        assert model.cls_head.num_classes == 9, name
        assert model.backbone.selector.exact_count, name
        assert tuple(cfg.model.train_cfg.budgets) == rep.train_budgets(spec), name
        if len(rep.train_budgets(spec)) > 1:  # the alignment loss needs several budgets
            assert cfg.model.train_cfg.get('align_weight', 1.0) == (1.0 if spec.align else 0.0), name
        assert (cfg.train_dataloader.batch_sampler.token_window is None) == (not spec.flexible), name
        # the same recipe: epochs and schedule do not depend on the run
        assert cfg.train_cfg.max_epochs == rep.epochs and cfg.param_scheduler == rep.base.param_scheduler
