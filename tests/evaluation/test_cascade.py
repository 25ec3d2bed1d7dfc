"""The budget cascade: exit rules, the runner against fixed budgets, calibration, the switch."""
import math

import pytest
import torch
from mmengine.config import Config

from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from conftest import random_checkpoint, tiny_model_cfg
from mmflux.evaluation.cascade import (BudgetCascade, CascadeTable, StageCosts, budget_coverage,
                                       choose_cascade, collect_table, fit_temperature, pareto,
                                       search_cascades, simulate, stage_statistic,
                                       table_statistic)
from mmflux.evaluation.to_switch import apply_token_optimization
from mmflux.evaluation.to_switch import TOPlan

# 8 frames x 56 px with 14 px x 1-frame patches: 8 x 4 x 4 = 128 tokens per view
FRAMES, SIDE = 8, 56


# ------------------------------------------------------------------ exit rules
def test_exit_statistics_on_hand_computed_logits():
    p = torch.tensor([0.7, 0.2, 0.1])
    # video 0: both views say p; video 1: view 0 says p, view 1 prefers class 1
    logits = torch.stack([torch.stack([p.log(), p.log()]),
                          torch.stack([p.log(), p[[1, 0, 2]].log()])])
    predicted = torch.tensor([0, 0])
    conf = stage_statistic('confidence', logits, predicted)
    assert conf.tolist() == pytest.approx([0.7, 0.45])  # (0.7 + 0.2) / 2 for video 1
    margin = stage_statistic('margin', logits, predicted)
    assert margin.tolist() == pytest.approx([0.5, 0.0])
    # T = 2: softmax(log p / 2) = sqrt(p) / sum(sqrt(p))
    assert float(stage_statistic('confidence', logits[:1], predicted[:1], temperature=2.0)) == \
        pytest.approx(0.7**0.5 / (0.7**0.5 + 0.2**0.5 + 0.1**0.5))
    assert stage_statistic('view_agreement', logits, predicted).tolist() == [1.0, 0.5]
    agree = stage_statistic('budget_agreement', logits, predicted, previous=torch.tensor([0, 1]))
    assert agree[0] == pytest.approx(0.7) and agree[1] == -math.inf
    first = stage_statistic('budget_agreement', logits, predicted, previous=None)
    assert first.tolist() == [-math.inf, -math.inf]  # the first stage never exits by agreement


def test_coverage_on_hand_computed_scores():
    scores = torch.tensor([[[4., 3., 2., 1.], [1., 1., 1., 1.]]])
    # group 0 keeps 4 + 3, group 1 keeps one 1: 8 of 14
    assert float(budget_coverage(scores, [2, 1])) == pytest.approx(8 / 14)
    assert float(budget_coverage(torch.zeros(1, 1, 3), [1])) == 1.0  # nothing moves


def test_coverage_is_the_score_mass_of_the_kept_tokens():
    """Oracle: the selector's own kept indices, gathered from its raster scores."""
    model = MODELS.build(tiny_model_cfg()).eval()
    x = torch.randn(3, 3, FRAMES, SIDE, SIDE)
    with torch.no_grad():
        emb = model.backbone.embed_patches(x, with_scores=True)
        for budget in (16, 50, 100):
            kept = model.backbone.select_tokens(emb.tokens, budget)
            raster = emb.scores.reshape(3, -1)
            expected = raster.gather(1, kept).sum(1) / raster.sum(1)
            counts = model.backbone.selector.group_counts(8, 16, budget)
            assert torch.allclose(budget_coverage(emb.scores, counts), expected, atol=1e-6)


def test_fit_temperature_recovers_a_known_scale():
    # true probabilities (1/4, 3/4); the logits are twice their log-odds: T = 2 calibrates
    z = torch.tensor([0.0, math.log(3.0)])
    logits = (2 * z).expand(4, 1, 2)
    labels = torch.tensor([1, 1, 1, 0])
    assert fit_temperature(logits, labels) == pytest.approx(2.0, rel=1e-6)


# ------------------------------------------------------------------ the runner
def _samples(n):
    return [ActionDataSample().set_gt_label(i % 7) for i in range(n)]


def _fixed_predictions(model, x, budget):
    model.test_cfg = dict(token_budget=budget)
    with torch.no_grad():
        return model.predict(x, _samples(x.shape[0]))


@pytest.mark.parametrize('rule', ['confidence', 'margin', 'view_agreement'])
def test_each_stage_answers_as_its_fixed_budget(rule):
    """Oracle: the ordinary fixed-budget predict of every stage on all videos; a
    video answered at stage k has that budget's pred_score, and the stage follows
    from the fixed predictions' statistics by the rule."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg()).eval()
    x = torch.randn(8, 3, 3, FRAMES, SIDE, SIDE)  # 8 videos x 3 views
    budgets = [24, 64, None]
    fixed = {b: _fixed_predictions(model, x, b) for b in budgets}
    stats = {}
    for b in budgets[:-1]:  # the statistics recomputed from the fixed path's own logits
        model.test_cfg = dict(token_budget=b)
        with torch.no_grad():
            logits, _ = model.extract_feat(x, stage='head')
        pred = torch.stack([s.pred_score for s in fixed[b]]).argmax(1)
        stats[b] = stage_statistic(rule, logits.reshape(8, 3, -1), pred)
    thresholds = [float(stats[b].median()) for b in budgets[:-1]]
    model.test_cfg = dict(token_budget=32, cascade=dict(type='BudgetCascade', budgets=budgets,
                                                        rule=rule, thresholds=thresholds))
    with torch.no_grad():
        answers = model.predict(x, _samples(8))
    expected_stage = []
    for v in range(8):
        stage = next((k for k, b in enumerate(budgets[:-1]) if stats[b][v] >= thresholds[k]), 2)
        expected_stage.append(stage)
    assert [a.metainfo['cascade_stage'] for a in answers] == expected_stage
    assert len(set(expected_stage)) >= 2  # the medians split the videos
    for v, answer in enumerate(answers):
        b = budgets[answer.metainfo['cascade_stage']]
        assert torch.allclose(answer.pred_score, fixed[b][v].pred_score, atol=1e-5)
        assert answer.metainfo['token_budget'] == b
        assert answer.metainfo['num_tokens'] == fixed[b][v].metainfo['num_tokens']
        assert answer.metainfo['head'] == fixed[b][v].metainfo['head']
        assert answer.metainfo['cascade_budgets'] == (24, 64, None)
        assert 0 < answer.metainfo['confidence'] <= 1


def test_motion_rule_runs_one_stage_per_video(monkeypatch):
    torch.manual_seed(1)
    model = MODELS.build(tiny_model_cfg()).eval()
    x = torch.randn(6, 2, 3, FRAMES, SIDE, SIDE)
    calls = []
    original = model.backbone.forward_embedded

    def spy(embedded, budget=None):
        calls.append((budget, embedded.tokens.shape[0]))
        return original(embedded, budget)

    with torch.no_grad():
        emb = model.backbone.embed_patches(x.reshape(12, 3, FRAMES, SIDE, SIDE), with_scores=True)
        counts = model.backbone.selector.group_counts(8, 16, 32)
        cover = budget_coverage(emb.scores, counts).reshape(6, 2).mean(1)
    tau = float(cover.median())
    model.test_cfg = dict(cascade=dict(type='BudgetCascade', budgets=[32, None], rule='motion',
                                       thresholds=[tau]))
    monkeypatch.setattr(model.backbone, 'forward_embedded', spy)
    with torch.no_grad():
        answers = model.predict(x, _samples(6))
    stages = [a.metainfo['cascade_stage'] for a in answers]
    assert stages == [0 if c >= tau else 1 for c in cover.tolist()]
    # every view ran exactly one budget
    assert calls == [(32, 2 * stages.count(0)), (None, 2 * stages.count(1))]


def test_random_selector_has_no_motion_rule():
    model = MODELS.build(tiny_model_cfg(backbone=dict(selector=dict(type='RandomSelector'))))
    model.eval().test_cfg = dict(cascade=dict(type='BudgetCascade', budgets=[32, None],
                                              rule='motion', thresholds=[0.5]))
    with pytest.raises(ValueError, match="selector RandomSelector has none"):
        model.predict(torch.randn(1, 1, 3, FRAMES, SIDE, SIDE), _samples(1))


@pytest.mark.parametrize('kwargs,match', [
    (dict(budgets=[64]), 'two or more budgets'),
    (dict(budgets=[64, 32], thresholds=[0.5]), 'strictly ascend'),
    (dict(budgets=[None, 32], thresholds=[0.5]), 'only be the last'),
    (dict(budgets=[32, 64], thresholds=[]), 'one number per stage'),
    (dict(budgets=[32, 64], rule='entropy', thresholds=[0.5]), "rule='entropy'"),
])
def test_bad_cascades_are_refused_by_key(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(tiny_model_cfg(cascade=dict(type='BudgetCascade', **kwargs)))


@pytest.mark.parametrize('rule', ['margin', 'budget_agreement', 'motion'])
def test_simulation_does_what_the_runner_does(rule):
    """Calibration simulates on a table; the runner on the same videos must agree."""
    torch.manual_seed(2)
    model = MODELS.build(tiny_model_cfg()).eval()
    x = torch.randn(10, 2, 3, FRAMES, SIDE, SIDE)
    samples = _samples(10)
    budgets = [28, 36, None]  # one head (32): budget agreement happens
    table = collect_table(model, [dict(inputs=list(x), data_samples=samples)], budgets, FRAMES,
                          SIDE)
    thresholds = []
    for k in range(2):
        s = table_statistic(table, rule, budgets, k, 1.0)
        finite = s[torch.isfinite(s)]
        thresholds.append(float(finite.median()) if finite.numel() else 0.0)
    cascade = BudgetCascade(budgets, rule, thresholds)
    simulated = simulate(table, cascade)
    answers = cascade.forward_videos(model, x, 10)
    assert [a.stage for a in answers] == simulated['stage'].tolist()
    preds = torch.stack([model.cls_head.average_clip(a.logits, 2)[0] for a in answers]).argmax(1)
    assert preds.tolist() == simulated['pred'].tolist()
    assert len(set(simulated['stage'].tolist())) >= 2


# ------------------------------------------------------------------ calibration
def _known_table():
    """10 videos, budgets 32 and 128: videos 0-5 are answered right and confidently
    (0.9) at 32; videos 6-9 are wrong and unsure (0.4) at 32, right at 128."""
    labels = torch.zeros(10, dtype=torch.long)
    sure = torch.tensor([0.9, 0.05, 0.05]).log()
    unsure = torch.tensor([0.3, 0.4, 0.3]).log()
    right = torch.tensor([0.6, 0.2, 0.2]).log()
    low = torch.stack([sure] * 6 + [unsure] * 4)[:, None]  # (10, 1, 3)
    high = torch.stack([right] * 10)[:, None]
    scores = {b: torch.softmax(v[:, 0], -1) for b, v in ((32, low), (128, high))}
    return CascadeTable(8, 56, labels, [32, 128], {32: low, 128: high}, scores,
                        {32: torch.full((10, ), math.nan), 128: torch.ones(10)},
                        {32: 32, 128: 128})


def test_calibration_picks_the_known_threshold():
    table = _known_table()
    costs = StageCosts(embed_gmacs=0.0, stage_gmacs={32: 1.0, 128: 4.0})
    found = search_cascades(table, costs, rules=('confidence', ), temperatures={32: 1, 128: 1})
    entries = [dict(c, val_top1=c['top1']) for c in found]
    best = choose_cascade(entries, max_gmacs=3.0)
    # exit the 6 sure videos at 32, send 4 on: top-1 1.0 at 1 + 0.4 * 4 = 2.6 GMACs
    assert best['top1'] == 1.0 and best['gmacs'] == pytest.approx(2.6)
    assert best['shares'] == pytest.approx([0.6, 0.4])
    assert 0.4 < best['cascade']['thresholds'][0] <= 0.9
    cheapest = choose_cascade(entries, min_top1=1.0)
    assert cheapest['gmacs'] == pytest.approx(2.6)
    # under 2 GMACs only "everyone exits at 32" fits: top-1 0.6 at 1 GMAC
    tight = choose_cascade(entries, max_gmacs=2.0)
    assert tight['top1'] == pytest.approx(0.6) and tight['gmacs'] == pytest.approx(1.0)
    assert [round(c['gmacs'], 3) for c in pareto(found)] == [1.0, 2.6]
    with pytest.raises(ValueError, match='meets gmacs <= 0.5'):
        choose_cascade(entries, max_gmacs=0.5)


def test_motion_rule_is_not_searched_without_scores():
    table = _known_table()
    found = search_cascades(table, StageCosts(0.0, {32: 1.0, 128: 4.0}), rules=('motion', ))
    assert found == []


# ------------------------------------------------------------------ the switch
def _cfg(**switch):
    model = tiny_model_cfg(backbone=dict(selector=dict(type='GroupDynamicSelector')),
                           token_budget=64)
    cfg = Config(dict(model=model, token_optimization=switch,
                      test_pipeline=[dict(type='FluxUniformSample', clip_len=8),
                                     dict(type='Resize', scale=(-1, 56)),
                                     dict(type='CenterCrop', crop_size=56)]))
    return cfg


def test_switch_with_an_explicit_cascade():
    cfg = apply_token_optimization(
        _cfg(cascade=dict(budgets=(32, 'all'), rule='margin', thresholds=(0.3, ))))
    assert cfg.model.test_cfg.cascade == dict(type='BudgetCascade', budgets=[32, None],
                                              rule='margin', thresholds=[0.3],
                                              temperatures=[1.0, 1.0])
    model = MODELS.build(cfg.model)
    assert model.test_cascade().budgets == [32, None]


def test_switch_takes_the_plans_cascade_for_a_target(tmp_path):
    entry = lambda top1, gmacs, frames: dict(  # noqa: E731
        frames=frames, side=56, selector='GroupDynamicSelector', val_top1=top1, gmacs=gmacs,
        cascade=dict(type='BudgetCascade', budgets=[16, 64], rule='confidence',
                     thresholds=[0.5], temperatures=[1.2, 1.0]))
    plan = TOPlan([dict(budget=64, frames=8, side=56, selector='GroupDynamicSelector',
                        val_top1=0.5)], dict(cascades=[entry(0.6, 0.05, 4), entry(0.7, 0.1, 8)]))
    path = plan.save(str(tmp_path / 'plan.json'))
    cfg = apply_token_optimization(_cfg(plan=path, cascade=True, max_gmacs=0.07))
    assert cfg.model.test_cfg.cascade['temperatures'] == [1.2, 1.0]
    assert cfg.test_pipeline[0]['clip_len'] == 4  # the 0.05-GMACs cascade's grid
    cfg = apply_token_optimization(_cfg(plan=path, cascade=True))
    assert cfg.test_pipeline[0]['clip_len'] == 8  # no target: the best on val
    cfg = apply_token_optimization(_cfg(plan=path, cascade=dict(min_top1=0.55)))
    assert cfg.test_pipeline[0]['clip_len'] == 4  # the cheapest at 55% or better
    cfg = apply_token_optimization(_cfg(plan=path, cascade=True, min_top1=0.65))
    assert cfg.test_pipeline[0]['clip_len'] == 8
    with pytest.raises(ValueError, match='min_top1 chooses among the cascades'):
        apply_token_optimization(_cfg(plan=path, budget=64, min_top1=0.65))
    with pytest.raises(ValueError, match='chooses a calibrated cascade from a plan'):
        apply_token_optimization(_cfg(cascade=True))


def test_a_fixed_budget_switch_turns_a_cascade_off():
    cfg = _cfg(budget=32)
    cfg.model.test_cfg['cascade'] = dict(type='BudgetCascade', budgets=[16, 64],
                                         thresholds=[0.5])
    assert apply_token_optimization(cfg).model.test_cfg.cascade is None


# ------------------------------------------------------------------ the tools
def test_init_recognizer_runs_the_cascade(tiny_motion_data, tmp_path):
    from mmaction.apis import inference_recognizer, init_recognizer
    from conftest import shared_path, write_tiny_train_config
    cfg = Config.fromfile(write_tiny_train_config(tmp_path, tiny_motion_data))
    ckpt = random_checkpoint(cfg, tmp_path / 'w.pth')
    cfg.token_optimization = dict(grid=(6, 42), cascade=dict(
        budgets=(8, 16, 'all'), rule='confidence', thresholds=(2.0, 0.0)))
    model = init_recognizer(cfg, ckpt, device='cpu')
    info = inference_recognizer(model, shared_path('data', 'demo.mp4')).metainfo
    # no probability reaches 2: stage 0 passes every video on, stage 1 answers (threshold 0)
    assert info['cascade_stage'] == 1 and info['cascade_ran'] == (0, 1)
    assert info['token_budget'] == 16 and info['num_tokens'] == 16
    assert info['tokens_run'] == 8 + 16 and info['grid'] == (6, 42, 42)


@pytest.mark.slow
def test_mmaction_test_tool_runs_the_plans_cascade(tiny_motion_data, tmp_path):
    """MMAction2's own tools/test.py, --cfg-options only: every prediction equals the
    fixed-budget run of the stage that answered it (same grid), and the usage metric
    counts the stages."""
    import pickle
    import subprocess
    import sys
    import mmaction
    import os.path as osp
    from conftest import REPO_ROOT, write_tiny_train_config
    tool = osp.join(osp.dirname(mmaction.__file__), '.mim', 'tools', 'test.py')
    config = write_tiny_train_config(tmp_path, tiny_motion_data)
    ckpt = random_checkpoint(Config.fromfile(config), tmp_path / 'w.pth')
    cascade = dict(type='BudgetCascade', budgets=[8, 24], rule='view_agreement',
                   thresholds=[1.0], temperatures=[1.0, 1.0])
    plan = TOPlan([dict(budget=8, frames=4, side=42, selector='GroupDynamicSelector',
                        val_top1=0.5)],
                  dict(cascades=[dict(frames=4, side=42, selector='GroupDynamicSelector',
                                      val_top1=0.5, gmacs=0.01, cascade=cascade)]))
    plan_path = plan.save(str(tmp_path / 'plan.json'))

    def run(name, opts):
        dump = tmp_path / f'{name}.pkl'
        result = subprocess.run([sys.executable, tool, config, ckpt, '--work-dir',
                                 str(tmp_path / name), '--dump', str(dump), '--cfg-options']
                                + opts, capture_output=True, text=True, cwd=REPO_ROOT)
        assert result.returncode == 0, result.stderr[-3000:]
        with open(dump, 'rb') as f:
            return pickle.load(f), result.stdout + result.stderr

    answers, log = run('cascade', [f'token_optimization.plan={plan_path}',
                                   'token_optimization.cascade=True'])
    fixed = {b: run(f'fixed{b}', [f'token_optimization.budget={b}',
                                  'token_optimization.grid=(4,42)'])[0] for b in (8, 24)}
    stages = [a['cascade_stage'] for a in answers]
    for i, a in enumerate(answers):
        b = (8, 24)[a['cascade_stage']]
        assert a['grid'] == fixed[b][i]['grid'] == (4, 42, 42)
        assert torch.allclose(a['pred_score'], fixed[b][i]['pred_score'], atol=1e-5)
    share = stages.count(0) / len(stages)
    assert f'cascade/answered_stage0: {share:.4f}' in log


def test_token_optimize_calibrates_cascades_into_the_plan(tiny_motion_data, tmp_path):
    import json
    from conftest import load_tool, write_tiny_train_config
    config = write_tiny_train_config(tmp_path, tiny_motion_data)
    ckpt = random_checkpoint(Config.fromfile(config), tmp_path / 'w.pth')
    plan_path = TOPlan([dict(budget=16, frames=4, side=42, selector='GroupDynamicSelector',
                             val_top1=0.5, gmacs=0.01)], dict(budgets={})).save(
                                 str(tmp_path / 'plan.json'))
    load_tool('token_optimize').main([
        config, ckpt, '--replan', plan_path, '--cascade', '--cascade-grids', '4x42',
        '--cascade-budgets', '8', '16', 'all', '--cascade-rules', 'confidence', 'motion',
        '--max-gmacs', '1000', '0.000001', '--min-top1', '0'])
    plan = json.loads(open(plan_path).read())
    assert plan['cascades'], 'no cascade on the front'
    for c in plan['cascades']:
        assert (c['frames'], c['side']) == (4, 42) and c['cascade']['rule'] in ('confidence',
                                                                                 'motion')
        assert min(c['shares']) > 0 and abs(sum(c['shares']) - 1) < 1e-6
    fixed = {f['budget']: f for f in plan['cascade_fixed']}
    assert set(fixed) == {8, 16, None} and fixed[None]['mean_tokens'] == 4 * 3 * 3
    met, missed, cheapest = plan['cascade_targets']
    assert met['gmacs'] <= 1000 and 'token_optimization.cascade=True' in met['cfg_options']
    assert 'No cascade' in missed['error']
    assert cheapest['gmacs'] == min(c['gmacs'] for c in plan['cascades'])
    assert (tmp_path / 'cascade_table.md').exists() and (tmp_path / 'cascade_plot.png').exists()


def test_usage_metric_counts_stages_and_tokens():
    from mmflux.evaluation import CascadeUsageMetric
    metric = CascadeUsageMetric()
    base = dict(cascade_budgets=(16, 64, None), confidence=0.5)
    metric.process({}, [
        dict(base, cascade_stage=0, cascade_ran=(0, ), tokens_run=16, num_tokens=16),
        dict(base, cascade_stage=2, cascade_ran=(0, 1, 2), tokens_run=16 + 64 + 128,
             num_tokens=128, confidence=0.9),
        dict(base, cascade_stage=1, cascade_ran=(0, 1), tokens_run=80, num_tokens=64),
        dict(base, cascade_stage=1, cascade_ran=(0, 1), tokens_run=80, num_tokens=64,
             failed=True),  # not counted
        dict(token_budget=64, num_tokens=64)])  # a fixed-budget prediction: not counted
    out = metric.compute_metrics(metric.results)
    assert out['answered_stage0'] == out['answered_stage1'] == out['answered_stage2'] == \
        pytest.approx(1 / 3)
    assert (out['ran_stage0'], out['ran_stage1'], out['ran_stage2']) == pytest.approx(
        (1, 2 / 3, 1 / 3))
    assert out['mean_tokens'] == pytest.approx((16 + 208 + 80) / 3)
    assert out['mean_answer_tokens'] == pytest.approx((16 + 128 + 64) / 3)
    assert out['mean_confidence'] == pytest.approx((0.5 + 0.9 + 0.5) / 3)
