"""tools/budget_report.py: all settings in one process, each video decoded once, with
the same per-video predictions as one tools/test.py run per setting."""
import pickle

import pytest
import torch
from mmengine.config import Config

from conftest import load_tool, write_tiny_train_config


@pytest.fixture
def config_and_checkpoint(tiny_motion_data, tmp_path):
    """The tiny training config on generated videos, and random weights saved for it
    (scores that differ from video to video are all the comparison needs)."""
    from mmaction.registry import MODELS
    from mmengine.registry import init_default_scope
    config = write_tiny_train_config(tmp_path, tiny_motion_data)
    cfg = Config.fromfile(config)
    init_default_scope('mmaction')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    checkpoint = str(tmp_path / 'random.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    return config, checkpoint


def run_report(config, checkpoint, work_dir, *extra):
    return load_tool('budget_report').main(
        [config, checkpoint, '--budgets', '48', '32', '--side', '56', '--to-grid', '8', '56',
         '--work-dir', str(work_dir), '--device', 'cpu', *extra])


def test_report_matches_test_tool_per_setting(config_and_checkpoint, tmp_path):
    config, checkpoint = config_and_checkpoint
    report = run_report(config, checkpoint, tmp_path / 'report')
    rows = report['rows']
    # 14 px x 1 frame: 48 tokens are 3 frames x 4 x 4 at 56 px, 32 are 2 frames
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (48, 'grid reduction', '3x56', 48), (48, 'TO (selector)', '8x56', 48),
        (32, 'grid reduction', '2x56', 32), (32, 'TO (selector)', '8x56', 32)]
    assert (tmp_path / 'report' / 'budget_report.md').read_text().count('\n') == 6
    test_tool = load_tool('test')
    by_setting = {}
    for row in report['predictions']:
        by_setting.setdefault((row['frames'], row['side'], row['budget']), []).append(row)
    assert len(by_setting) == 4 and {len(v) for v in by_setting.values()} == {8}
    for (frames, side, budget), mine in by_setting.items():
        dump = str(tmp_path / f'{frames}x{side}_{budget}.pkl')
        test_tool.main([config, checkpoint, '--grid', str(frames), str(side),
                        '--budget', str(budget) if budget else 'all', '--dump', dump,
                        '--work-dir', str(tmp_path / 'test')])
        with open(dump, 'rb') as f:
            theirs = pickle.load(f)
        assert [r['pred'] for r in mine] == [int(t['pred_score'].argmax()) for t in theirs]
        for r, t in zip(mine, theirs):
            assert r['score'] == pytest.approx(float(t['pred_score'].max()), abs=1e-4)
    # the settings really differ: otherwise the comparison above would prove little
    scores = {k: [r['score'] for r in v] for k, v in by_setting.items()}
    assert len({tuple(v) for v in scores.values()}) == 4


def test_per_grid_loaders_give_the_same_report(config_and_checkpoint, tmp_path):
    config, checkpoint = config_and_checkpoint
    once = run_report(config, checkpoint, tmp_path / 'once')
    per_grid = run_report(config, checkpoint, tmp_path / 'per_grid', '--per-grid')
    assert per_grid['rows'] == once['rows']

    def by_setting(rows):  # the two paths visit (video, setting) pairs in other orders
        return sorted(rows, key=lambda r: (r['frames'], r['side'], r['budget'] or 0, r['video']))
    mine, theirs = by_setting(per_grid['predictions']), by_setting(once['predictions'])
    assert len(mine) == len(theirs) == 4 * 8
    assert [(r['video'], r['pred']) for r in mine] == [(r['video'], r['pred']) for r in theirs]
    for a, b in zip(mine, theirs):
        assert a['score'] == pytest.approx(b['score'], abs=1e-4)


def test_report_refuses_a_side_the_patches_do_not_divide(config_and_checkpoint, tmp_path):
    config, checkpoint = config_and_checkpoint
    with pytest.raises(SystemExit, match='--side'):
        load_tool('budget_report').main([config, checkpoint, '--budgets', '32', '--side', '50',
                                         '--work-dir', str(tmp_path / 'r')])
