"""The Token Optimization owner: the switch and its --cfg-options, the budget sentinel, the
plan and its choice rule, the selector swap and the init_recognizer hand-over."""
import argparse
import os.path as osp

import pytest
import torch
from mmengine.config import Config, DictAction

from mmaction.registry import MODELS
from mmflux.evaluation.grid_config import ViewGrid, read_test_grid, view_grids
from mmflux.evaluation.to_switch import (TOPlan, apply_token_optimization, cfg_options,
                                         choice_key, pareto_front, parse_budget, resolved_config,
                                         set_switch, swap_selector)
from conftest import REPO_ROOT, TINY_RECIPE, tiny_model_cfg

SSV2 = osp.join(REPO_ROOT, 'configs', 'fluxvit', 'fluxvit-s14_ssv2.py')
PLUG = osp.join(REPO_ROOT, 'configs', 'plug_and_play', 'vit-b16_videomae_flux-multi_k400.py')


def merged(path, options):
    """A config with ``--cfg-options`` parsed the way the tools parse them."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(parser.parse_args(['--cfg-options'] + options).cfg_options)
    return cfg


@pytest.mark.parametrize('path', [TINY_RECIPE, SSV2, PLUG])
def test_switch_sets_every_test_pipeline_and_keeps_the_views(path):
    before = read_test_grid(Config.fromfile(path))
    cfg = merged(path, cfg_options(budget=64, frames=12, side=70, selector='RandomSelector'))
    assert read_test_grid(resolved_config(cfg)) == ViewGrid(12, 70, before.num_clips, before.crop)
    assert read_test_grid(cfg) == before  # resolved_config copies
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


def test_switch_off_changes_nothing_and_none_is_every_token():
    cfg = Config.fromfile(TINY_RECIPE)
    assert apply_token_optimization(cfg).model.test_cfg.token_budget == 256
    for spelling in ('None', 'all'):  # None, and the command line's "all"
        cfg = merged(TINY_RECIPE, [f'token_optimization.budget={spelling}'])
        assert apply_token_optimization(cfg).model.test_cfg.token_budget is None
    assert cfg_options(budget=None) == ['token_optimization.budget=None']
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
    with pytest.raises(ValueError, match='a plan holds reduced budgets only'):
        apply_token_optimization(merged(TINY_RECIPE, [f'token_optimization.plan={plan}',
                                                      'token_optimization.budget=None']))


def test_parse_budget_has_one_sentinel():
    assert parse_budget(None) is None and parse_budget('all') is None and parse_budget('ALL') is None
    assert parse_budget(64) == 64 and parse_budget('64') == 64
    for bad in (0, -1, True, 1.5, 'some'):
        with pytest.raises(ValueError, match='expected a positive number of patch tokens'):
            parse_budget(bad)


def test_set_switch_sets_the_budget_when_given_and_keeps_the_rest():
    cfg = merged(TINY_RECIPE, ['token_optimization.grid=(12,56)'])
    set_switch(cfg, grid=None, plan=None)  # None: not given, the grid stays
    assert cfg.token_optimization == dict(grid=(12, 56))
    set_switch(cfg, budget='all')
    assert cfg.token_optimization == dict(grid=(12, 56), budget=None)
    assert apply_token_optimization(cfg).model.test_cfg.token_budget is None


def test_choice_rule_is_shared_by_plan_and_search():
    # equal accuracy: fewer GMACs wins even with more sampled tokens; then fewer tokens
    a = dict(budget=64, frames=8, side=56, selector='S', val_top1=0.5, gmacs=0.06, grid_tokens=256)
    b = dict(budget=64, frames=12, side=56, selector='S', val_top1=0.5, gmacs=0.05, grid_tokens=384)
    c = dict(budget=64, frames=4, side=84, selector='S', val_top1=0.5, gmacs=0.05, grid_tokens=288)
    assert TOPlan([a, b, c]).choose(budget=64) is c
    assert choice_key(0.5, 0.05, 288) > choice_key(0.5, 0.05, 384) > choice_key(0.5, 0.06, 256)
    assert choice_key(0.6, 9.0, 999) > choice_key(0.5, 0.01, 1)  # accuracy first
    assert choice_key(0.5, None, 256) > choice_key(0.5, None, 384)  # no GMACs: fewer tokens


def test_pareto_front_drops_dominated_settings():
    points = [dict(name=n, latency_ms=c, val_top1=a) for n, c, a in
              [('a', 1, .5), ('b', 2, .4), ('c', 3, .7), ('d', 3, .6), ('e', 5, .7), ('f', 6, .9)]]
    assert [p['name'] for p in pareto_front(points)] == ['a', 'c', 'f']
    assert [p['name'] for p in pareto_front(points, cost='missing')] == []


def test_swap_selector_keeps_every_argument_the_new_type_takes():
    model_cfg = tiny_model_cfg()
    model_cfg['backbone']['selector'] = dict(type='GroupDynamicSelector', max_groups=2,
                                             exact_count=True, stable=False)
    model = MODELS.build(model_cfg)
    new = swap_selector(model, 'RandomSelector', seed=3)
    assert model.backbone.selector is new and type(new).__name__ == 'RandomSelector'
    assert (new.max_groups, new.exact_count, new.seed) == (2, True, 3)  # stable: not its argument
    back = swap_selector(model, 'GroupDynamicSelector', seed=3)  # a seed is not its argument
    # Random's arguments carry over; stable is not one of them, so it is the default (True)
    assert (back.max_groups, back.exact_count) == (2, True) and back.stable
    swap_selector(model, dict(type='GroupDynamicSelector', stable=False))
    assert not model.backbone.selector.stable and model.backbone.selector.exact_count
    # a model config: the same rule on model.backbone.selector
    swap_selector(model_cfg, 'RandomSelector')
    assert model_cfg['backbone']['selector'] == dict(type='RandomSelector', max_groups=2,
                                                     exact_count=True)
    with pytest.raises(ValueError, match="'Nope' is not a registered token selector"):
        swap_selector(model, 'Nope')
    with pytest.raises(ValueError, match=r"RandomSelector takes no \['stable'\]"):
        swap_selector(model, dict(type='RandomSelector', stable=True))


def test_init_recognizer_hand_over_applies_the_switch(tmp_path):
    from mmaction.apis import init_recognizer
    cfg = merged(TINY_RECIPE, ['token_optimization.budget=32', 'token_optimization.grid=(4,42)',
                               'token_optimization.selector=RandomSelector'])
    cfg.model.backbone.selector = dict(type='GroupDynamicSelector', exact_count=True)
    model = init_recognizer(cfg, None, device='cpu')
    assert model.cfg is cfg and model.test_cfg['token_budget'] == 32
    assert type(model.backbone.selector).__name__ == 'RandomSelector'
    assert model.backbone.selector.exact_count  # the configured selector's argument kept
    assert read_test_grid(cfg)[:2] == (4, 42)  # inference_recognizer's test_pipeline
    with torch.no_grad():
        _, info = model.extract_feat(torch.zeros(1, 3, 4, 42, 42), stage='head')
    assert info['num_tokens'] == 32
