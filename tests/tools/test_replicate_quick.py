"""The reduced replication (issue: show that Flux works) runs end to end."""
import json
import subprocess
import sys

import pytest

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
    text = (out / 'results.md').read_text()
    assert '| FluxViT, Flux-Multi |' in text and '## Summary' in text and report['finished']
    assert (out / 'results.png').stat().st_size > 10_000
    # --resume keeps the finished runs: nothing is trained again
    again = subprocess.run([sys.executable, 'tools/replicate_flux.py', '--quick', '--out', str(out),
                            '--data', str(data), '--runs', 'fixed', 'flux_multi', '--resume'],
                           capture_output=True, text=True, cwd=REPO_ROOT, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    # (the report's command list still names the first invocation's trainings)
    assert again.stdout.count('kept from') == 2 and '[replication] train ' not in again.stdout
    assert json.loads((out / 'results.json').read_text())['results'] == report['results']


def test_relative_output_paths_are_made_absolute():
    # generated configs name their bases by path; a relative --out once broke every run
    import os.path as osp
    module = load_tool()
    args = module.parse_args(['--out', 'work_dirs/x', '--data', 'data/y'])
    assert args.out == osp.abspath('work_dirs/x') and args.data == osp.abspath('data/y')


def load_tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location('replicate_flux', f'{REPO_ROOT}/tools/replicate_flux.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_is_mean_and_half_spread_over_seeds(tmp_path):
    module = load_tool()
    rep = module.Replication(module.parse_args(['--out', str(tmp_path)]))

    def run(seed, top1):
        row = dict(grid_reduction=top1, random=top1 / 2, group_dynamic=top1, to=top1)
        return dict(run='fixed', seed=seed, label='fixed', rows={'256': row, 64: row})

    summary = rep.summary({'a': run(0, 0.30), 'b': run(1, 0.20)})
    assert summary['fixed']['seeds'] == [0, 1]
    mean, half = summary['fixed']['rows'][64]['grid_reduction']
    assert abs(mean - 25.0) < 1e-9 and abs(half - 5.0) < 1e-9
    mean, half = summary['fixed']['rows'][256]['random']  # JSON turns budgets into strings
    assert abs(mean - 12.5) < 1e-9 and abs(half - 2.5) < 1e-9


def test_report_only_needs_a_finished_or_partial_run(tmp_path):
    module = load_tool()
    with pytest.raises(SystemExit, match='run the replication first'):
        module.Replication(module.parse_args(['--out', str(tmp_path), '--report-only'])).main()


def test_every_run_config_passes_the_flux_config_check(tmp_path):
    # the CI run trains two of the five runs; the others must at least build and pass the check
    # (the MMAction2-ViT configs once failed it: the wrapped ViT's tubelet was read as 1)
    import mmflux  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmaction.registry import MODELS
    from mmflux.utils.config_check import check_flux_config
    module = load_tool()
    rep = module.Replication(module.parse_args(['--out', str(tmp_path)]))
    rep.num_classes = 9
    init_default_scope('mmaction')
    for name, spec in rep.run_specs().items():
        cfg = Config.fromfile(rep.write_config(name, spec, epochs=1))
        check_flux_config(cfg)
        model = MODELS.build(cfg.model)
        assert model.cls_head.num_classes == 9, name
        assert model.backbone.tubelet_size == rep.tubelet, name
