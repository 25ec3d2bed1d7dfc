"""The reduced replication runs end to end, resumes, and its report is reproducible from its
saved predictions."""
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
    out, work = tmp_path / 'out', tmp_path / 'work'
    replicate('--quick', '--out', out, '--work', work, '--jobs', '2')  # two runs at a time
    saved = json.loads((out / 'setup.json').read_text())
    runs = {p.name: json.loads(p.read_text()) for p in (out / 'runs').iterdir()}
    assert set(runs) == {'fixed_seed0.json', 'fixed_seed1.json', 'flux_multi_seed0.json',
                         'flux_multi_seed1.json'}
    # OUT holds small JSON only: data and checkpoints are under WORK
    assert not glob.glob(str(out / '**' / '*.pth'), recursive=True)
    labels = np.array(saved['setup']['labels'])
    budgets = saved['setup']['budgets']
    for run in runs.values():
        cells = run['cells']
        # every budget, method and random draw has one prediction per test video
        assert len(cells) == 2 * 4 + 3 * (1 + saved['setup']['draws'])  # grid + TO; gd + draws
        for key, cell in cells.items():
            assert len(cell['pred']) == len(labels), key
            fraction, method = key.split(':')[:2]
            if method != 'grid':
                assert cell['kept'] == budgets[fraction], key  # exactly the budget
            else:  # grid reduction: a smaller grid, chosen on val, that fits the budget
                frames, side = map(int, cell['grid'].split('x'))
                assert (frames // 2) * (side // 7) ** 2 == cell['kept'] <= budgets[fraction], key
        compute = run['compute']
        assert compute['steps'] > 0 and compute['token_passes'] == (
            compute['steps'] * compute['batch_size'] * compute['tokens_per_clip'])
        assert [e for e, _ in run['val_curve']] == [1]  # validated at its one epoch
        # each seed fine-tunes its own pretraining: its config names it, its log shows it loaded
        pre = saved['pretrained'][run['pretrained']]
        assert run['pretrained'] == f"fixed/seed{run['seed']}" and pre['classes'] == 9
        pre_ckpt = osp.join(work, pre['checkpoint'])
        cfg = Config.fromfile(osp.join(work, run['config']))
        assert cfg.model.backbone.init_cfg.checkpoint == pre_ckpt
        log, = glob.glob(osp.join(work, osp.dirname(run['config']), '*', '*.log'))
        text = open(log).read()
        assert f'load backbone. in model from: {pre_ckpt}' in text and f"seed: {run['seed']}" in text
    assert set(saved['pretrained']) == {'fixed/seed0', 'fixed/seed1'}
    # the report is a function of the saved predictions: --report-only writes it again, identically
    first = (out / 'results.md').read_text()
    (out / 'results.md').unlink()
    replicate('--quick', '--out', out, '--report-only')
    assert (out / 'results.md').read_text() == first
    assert '## Compute-matched' in first and "## The paper's claims" in first
    # every saved prediction (random draws included) comes out again from the checkpoints
    assert 'every prediction of 4 runs reproduced' in replicate('--quick', '--out', out, '--work', work,
                                                                '--verify')
    # a second call resumes: nothing is trained again
    again = replicate('--quick', '--out', out, '--work', work)
    assert again.count('kept from') == 4 and '] train ' not in again


def test_verify_fails_when_a_prediction_changed(tmp_path):
    module = load_tool('replicate_flux')
    state = module.make_state(module.parse_args(['--out', str(tmp_path), '--quick']))
    state.results = {'fixed/seed0': dict(config='c.py', checkpoint='c.pth',
                                         cells={'1:grid': dict(pred='0')})}
    module.pipeline.evaluate = lambda state, config, ckpt: {'1:grid': dict(pred='1')}
    with pytest.raises(SystemExit, match='1 settings predict differently'):
        module.pipeline.verify(state)


def test_relative_output_paths_are_made_absolute():
    module = load_tool('replicate_flux')
    args = module.parse_args(['--out', 'work_dirs/x', '--work', 'data/y'])
    assert args.out == osp.abspath('work_dirs/x') and args.work == osp.abspath('data/y')
    assert module.parse_args(['--out', 'o']).work == osp.join(osp.abspath('o'), 'work')


def test_report_only_needs_a_run(tmp_path):
    module = load_tool('replicate_flux')
    with pytest.raises(SystemExit, match='run the replication first'):
        module.main(['--out', str(tmp_path), '--report-only'])


def test_a_saved_run_of_another_setup_is_refused(tmp_path):
    module = load_tool('replicate_flux')
    (tmp_path / 'setup.json').write_text(json.dumps(dict(setup=dict(version=3))))
    with pytest.raises(SystemExit, match='format 3'):
        module.main(['--out', str(tmp_path), '--report-only'])
