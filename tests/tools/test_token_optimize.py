"""tools/token_optimize.py end to end on the session's tiny trained model: search, write the plan."""
import json
import subprocess
import sys

import pytest

from conftest import REPO_ROOT


@pytest.mark.slow
def test_token_optimize_tool_end_to_end(tiny_trained, tmp_path):
    """Search two budgets with two selectors on the tiny model trained for one epoch."""
    config, checkpoint, _ = tiny_trained
    env_run = dict(capture_output=True, text=True, cwd=REPO_ROOT)
    out = tmp_path / 'to'
    result = subprocess.run([sys.executable, 'tools/token_optimize.py', config,
                             checkpoint, '--budgets', '32', '16',
                             '--frames', '1', '2', '4', '--sides', '42', '56', '--out-dir', str(out),
                             '--latency', '--latency-runs', '2', '--max-latency-ms', '1000', '0.001',
                             '--compare-per-grid'],
                            **env_run)
    assert result.returncode == 0, result.stderr[-3000:]
    table = (out / 'to_table.md').read_text()
    assert 'TO (GroupDynamicSelector)' in table and 'TO (RandomSelector)' in table
    assert 'grid reduction' in table
    assert (out / 'to_plot.png').stat().st_size > 1000
    plan = json.loads((out / 'to_plan.json').read_text())
    assert set(plan['budgets']) == {'32', '16'}
    for budget, setting in plan['budgets'].items():
        assert f'token_optimization.budget={budget}' in setting['cfg_options']
        assert setting['frames'] * (setting['side'] // 14)**2 >= int(budget)
    # every candidate of each budget and selector is in the plan, with its cost
    assert {(s['budget'], s['selector']) for s in plan['settings']} == {
        (b, sel) for b in (32, 16) for sel in ('GroupDynamicSelector', 'RandomSelector')}
    assert all(s['gmacs'] > 0 for s in plan['settings'])
    assert all(s['latency_ms'] > 0 for s in plan['settings'])
    assert plan['machine']['runtime'] == 'pytorch' and plan['machine']['torch_threads'] >= 1
    met, missed = plan['targets']
    assert met['max_latency_ms'] == 1000 and met['latency_ms'] <= 1000 and 'budget' in met
    assert 'No setting' in missed['error']  # 1 us: nothing meets it, and the plan says so
    assert plan['search_seconds']['same_results'] is True  # decode-once == per-grid
    assert 'ratio' in result.stdout and (out / 'to_latency.png').stat().st_size > 1000
    rows = (out / 'to_predictions.csv').read_text().splitlines()
    assert rows[0].startswith('split,video,label,pred') and len(rows) > len(plan['settings'])
