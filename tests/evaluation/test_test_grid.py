"""The test grid's one owner: reading, setting, the config switch and its --cfg-options."""
import argparse
import os.path as osp

import pytest
from mmengine.config import Config, DictAction

from mmflux.evaluation.test_grid import (ViewGrid, apply_token_optimization, cfg_options,
                                         read_test_grid, view_grids)
from mmflux.evaluation.to_plan import TOPlan
from conftest import REPO_ROOT, TINY_RECIPE

SSV2 = osp.join(REPO_ROOT, 'configs', 'fluxvit', 'fluxvit-s14_ssv2.py')
PLUG = osp.join(REPO_ROOT, 'configs', 'plug_and_play', 'vit-b16_videomae_flux-multi_k400.py')


def merged(path, options):
    """A config with ``--cfg-options`` parsed the way the tools parse them."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(parser.parse_args(['--cfg-options'] + options).cfg_options)
    return cfg


@pytest.mark.parametrize('path, grid', [
    (TINY_RECIPE, ViewGrid(8, 56, 2, 'ThreeCrop')),
    (SSV2, ViewGrid(8, 224, 2, 'ThreeCrop')),   # SSv2: 2 temporal views x 3 crops
    (PLUG, ViewGrid(16, 224, 4, 'ThreeCrop')),  # K400: 4 x 3
])
def test_read_test_grid_of_the_shipped_configs(path, grid):
    assert read_test_grid(Config.fromfile(path)) == grid


@pytest.mark.parametrize('path', [TINY_RECIPE, SSV2, PLUG])
def test_switch_sets_every_test_pipeline_and_keeps_the_views(path):
    before = read_test_grid(Config.fromfile(path))
    cfg = merged(path, cfg_options(budget=64, frames=12, side=70, selector='RandomSelector'))
    assert read_test_grid(cfg) == ViewGrid(12, 70, before.num_clips, before.crop)
    apply_token_optimization(cfg)
    for pipeline in (cfg.test_dataloader.dataset.pipeline, cfg.test_pipeline):
        steps = {s['type']: s for s in pipeline}
        sampler = next(s for s in pipeline if 'clip_len' in s)
        assert sampler['clip_len'] == 12 and sampler['num_clips'] == before.num_clips
        assert steps['Resize']['scale'] == (-1, 70) and steps['ThreeCrop']['crop_size'] == 70
    assert cfg.model.test_cfg.token_budget == 64
    assert cfg.model.backbone.selector.type == 'RandomSelector'
    grids = {g['where']: g for g in view_grids(cfg)}
    assert grids['val_dataloader.dataset.pipeline']['frames'] == before.frames  # val untouched


def test_switch_off_changes_nothing_and_budget_all():
    cfg = Config.fromfile(TINY_RECIPE)
    assert apply_token_optimization(cfg).model.test_cfg.token_budget == 256
    cfg = merged(TINY_RECIPE, ['token_optimization.budget=all'])
    assert apply_token_optimization(cfg).model.test_cfg.token_budget is None
    assert read_test_grid(cfg) == ViewGrid(8, 56, 2, 'ThreeCrop')
    cfg = merged(TINY_RECIPE, ['token_optimization.grid=(12,56)'])  # grid only: budget stays
    assert apply_token_optimization(cfg).model.test_cfg.token_budget == 256


def test_switch_errors_name_the_key():
    with pytest.raises(KeyError, match='unknown keys'):
        apply_token_optimization(merged(TINY_RECIPE, ['token_optimization.frames=12']))
    with pytest.raises(ValueError, match=r'token_optimization.grid=12: expected \(frames, side\)'):
        apply_token_optimization(merged(TINY_RECIPE, ['token_optimization.grid=12']))
    with pytest.raises(ValueError, match='token_optimization.budget=-3'):
        apply_token_optimization(merged(TINY_RECIPE, ['token_optimization.budget=-3']))
    with pytest.raises(FileNotFoundError, match='tools/token_optimize.py'):
        apply_token_optimization(merged(TINY_RECIPE, ['token_optimization.plan=/no/plan.json']))


def write_plan(tmp_path):
    settings = [
        dict(budget=64, frames=8, side=56, selector='GroupDynamicSelector', val_top1=0.6,
             gmacs=0.05, latency_ms=4.0, grid_tokens=256),
        dict(budget=64, frames=12, side=56, selector='GroupDynamicSelector', val_top1=0.7,
             gmacs=0.06, latency_ms=6.0, grid_tokens=384),
        dict(budget=128, frames=12, side=56, selector='GroupDynamicSelector', val_top1=0.8,
             gmacs=0.1, latency_ms=9.0, grid_tokens=384),
        dict(budget=64, frames=16, side=42, selector='RandomSelector', val_top1=0.5,
             gmacs=0.06, latency_ms=5.0, grid_tokens=288),
    ]
    return TOPlan(settings, dict(patch_size=7)).save(str(tmp_path / 'plan.json'))


def test_plan_picks_grid_and_selector_for_budget_or_latency(tmp_path):
    plan = write_plan(tmp_path)
    cfg = apply_token_optimization(merged(TINY_RECIPE, ['token_optimization.budget=64',
                                                 f'token_optimization.plan={plan}']))
    assert read_test_grid(cfg)[:2] == (12, 56) and cfg.model.test_cfg.token_budget == 64
    cfg = apply_token_optimization(merged(TINY_RECIPE, [f'token_optimization.plan={plan}',
                                                 'token_optimization.max_latency_ms=5.5']))
    assert read_test_grid(cfg)[:2] == (8, 56) and cfg.model.test_cfg.token_budget == 64
    cfg = apply_token_optimization(merged(TINY_RECIPE, [
        f'token_optimization.plan={plan}', 'token_optimization.budget=64',
        'token_optimization.selector=RandomSelector']))
    assert read_test_grid(cfg)[:2] == (16, 42)
    assert cfg.model.backbone.selector.type == 'RandomSelector'
    with pytest.raises(ValueError, match='the cheapest is 4 ms'):
        TOPlan.load(plan).choose(max_latency_ms=1)
    with pytest.raises(ValueError, match=r'its budgets are \[128, 64\]'):
        TOPlan.load(plan).choose(budget=32)
