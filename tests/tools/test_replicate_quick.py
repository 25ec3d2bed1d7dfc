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
    assert report['budgets'] == [128, 32]
    # same training compute: the single-budget baseline trains 3x the epochs of Flux-Multi
    epochs = {k: v['epochs'] for k, v in report['results'].items()}
    assert epochs == {'fixed_seed0': 3, 'flux_multi_seed0': 1}
    for res in report['results'].values():
        for row in res['rows'].values():
            for key in ('grid_reduction', 'random', 'group_dynamic', 'to'):
                assert 0.0 <= row[key] <= 1.0
    assert '| FluxViT, Flux-Multi |' in (out / 'results.md').read_text()
