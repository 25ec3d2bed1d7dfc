"""The reduced replication (issue: show that Flux works) runs end to end."""
import json
import subprocess
import sys

from conftest import REPO_ROOT


def test_quick_replication(tmp_path):
    out, data = tmp_path / 'out', tmp_path / 'data'
    result = subprocess.run([sys.executable, 'tools/replicate_flux.py', '--quick', '--out', str(out),
                             '--data', str(data), '--runs', 'fixed', 'flux_multi'],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / 'results.json').read_text())
    assert set(report['results']) == {'fixed_seed0', 'flux_multi_seed0'}
    from mmengine.config import Config
    tiny = Config.fromfile(f'{REPO_ROOT}/configs/fluxvit/fluxvit-tiny_synthetic.py').model
    full = 8 // tiny.backbone.tubelet_size * (56 // tiny.backbone.patch_size)**2  # 8x56 grid
    assert report['budgets'] == [full, full // 4]
    # same training compute: the single-budget baseline trains sum(budgets) / full times the
    # epochs of Flux-Multi (patch-token passes per step)
    epochs = {k: v['epochs'] for k, v in report['results'].items()}
    assert epochs == {'fixed_seed0': round(sum(tiny.train_cfg.budgets) / full), 'flux_multi_seed0': 1}
    for res in report['results'].values():
        for row in res['rows'].values():
            for key in ('grid_reduction', 'random', 'group_dynamic', 'to'):
                assert 0.0 <= row[key] <= 1.0
    assert '| FluxViT, Flux-Multi |' in (out / 'results.md').read_text()


def test_relative_output_paths_are_made_absolute():
    # generated configs name their bases by path; a relative --out once broke every run
    import importlib.util
    import os.path as osp
    spec = importlib.util.spec_from_file_location('replicate_flux', f'{REPO_ROOT}/tools/replicate_flux.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = module.parse_args(['--out', 'work_dirs/x', '--data', 'data/y'])
    assert args.out == osp.abspath('work_dirs/x') and args.data == osp.abspath('data/y')
