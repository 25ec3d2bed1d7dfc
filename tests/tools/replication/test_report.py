"""The replication report is computed from the saved predictions alone, with the
paper's claims Holm-corrected as one family."""
import os.path as osp
import sys

import numpy as np
import pytest

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..', '..', 'tools'))
from replication.design import FRACTIONS  # noqa: E402
from replication.pipeline import encode_predictions  # noqa: E402
from replication.report import ReplicationReport  # noqa: E402

N = 120
LABELS = [i % 6 for i in range(N)]
BUDGETS = {'1': 256, '1/2': 128, '1/4': 64, '1/8': 32}
HALF = np.arange(N) < N // 2


def cells(right):
    """Every cell of one run; ``right(fraction, method, draw)`` -> boolean per video."""
    out = {}
    for f in FRACTIONS:
        keys = [(f'{f}:grid', 'grid', 0), (f'{f}:to', 'to', 0)]
        if f != '1':
            keys += [(f'{f}:group_dynamic', 'group_dynamic', 0)]
            keys += [(f'{f}:random:{d}', 'random', d) for d in range(2)]
        for key, method, draw in keys:
            ok = right(f, method, draw)
            pred = [y if o else (y + 1) % 6 for y, o in zip(LABELS, ok)]
            out[key] = dict(grid='8x56', kept=BUDGETS[f], pred=encode_predictions(pred))
    return out


def flux_multi(fraction, method, draw):
    # right everywhere, except grid reduction at a reduced budget: right on half
    return HALF if method == 'grid' and fraction != '1' else np.ones(N, bool)


def fixed(fraction, method, draw):
    # right on the first half; both random draws right everywhere (random beats group-dyn)
    return np.ones(N, bool) if method == 'random' else HALF


def state():
    compute = dict(epochs=1, steps=10, token_passes=1, train_seconds=60, eval_seconds=60)
    runs = {}
    for seed in (0, 1, 2):
        for name, right in (('flux_multi', flux_multi), ('fixed', fixed)):
            runs[f'{name}/seed{seed}'] = dict(run=name, seed=seed, cells=cells(right), compute=compute,
                                              val_curve=[[1, 0.3], [2, 0.4 + 0.01 * seed]])
    info = dict(align=False, flexible=False, vit=False, pretrain='fixed', train_budgets=[256])
    setup = dict(labels=LABELS, budgets=BUDGETS, seeds=[0, 1, 2], epochs=1, draws=2, num_classes=6,
                 quick=True, base_grid='8x56', to_frames=[8], to_sides=[56], videos=[],
                 runs=dict(fixed=dict(info, label='fixed 8x56'),
                           flux_multi=dict(info, label='Flux-Multi', flexible=True,
                                           train_budgets=[256, 128, 64])))
    pretrained = {'fixed/seed0': dict(arm='fixed', val_curve=[[1, 0.2], [2, 0.25]])}
    return dict(setup=setup, runs=runs, pretrained=pretrained, commands=['cmd'], seconds=60.0)


def row(text, start):
    return next(line for line in text.splitlines() if line.startswith(start))


def test_accuracies_and_the_mean_over_random_draws():
    report = ReplicationReport(state(), num_bootstrap=200)
    assert report.top1('flux_multi', 'to', '1/4').mean == 100.0
    assert report.top1('flux_multi', 'grid', '1/4').mean == 50.0
    assert report.top1('fixed', 'random', '1/4').mean == 100.0
    # at full budget the selectors keep every token: they read the full grid
    assert report.top1('fixed', 'group_dynamic', '1').mean == report.top1('fixed', 'grid', '1').mean


def test_claims_are_one_holm_family_and_decide_the_verdicts():
    report = ReplicationReport(state(), num_bootstrap=1000)
    claims = {k: r for k, r in report.rows.items() if r['claim']}
    # with fixed and Flux-Multi only: TO vs grid (2 runs) and group-dyn vs random (2 runs),
    # each at 1/2, 1/4, 1/8
    assert report.family_size() == len(claims) == 12
    # 6 rows differ by 50 points (p = 2 / 1001 each), 6 not at all (fixed: TO and grid reduction
    # both right on the same half; Flux-Multi: group-dyn and random both always right: p = 1).
    # Holm: the smallest p times m = 12, then 11, 10, ... raised to the running maximum: 12 p
    for r in claims.values():
        small = r['comp'].delta != 0
        assert r['comp'].p == pytest.approx(2 / 1001 if small else 1.0)
        assert r['adjusted'] == pytest.approx(12 * 2 / 1001 if small else 1.0)
    text = report.markdown()
    assert row(text, '| Flux-Multi: TO vs grid reduction | 64 (1/4)').endswith('| supported |')
    assert '**+50.0** (3 seeds)' in row(text, '| Flux-Multi: TO vs grid reduction | 64 (1/4)')
    assert row(text, '| fixed grid: group-dyn vs random | 32 (1/8)').endswith('| contradicted |')
    # Flux-Multi: TO and grid reduction agree at full budget (not a claim row there)
    assert '| Flux-Multi: TO vs grid reduction | 256 (1)' not in text
    # a contrast outside the family: a BH q-value and no verdict
    other = row(text, '| Flux-Multi vs fixed grid (fewer token-passes), both with TO | 64 (1/4)')
    assert '(BH)' in other and other.endswith('| — |') and '**+50.0**' in other


def test_runs_not_trained_are_left_out_and_the_report_is_a_function_of_the_state():
    text = ReplicationReport(state(), num_bootstrap=200).markdown()
    assert 'trained at that budget' not in text and "ViT: Flux-Multi" not in text
    assert 'Not tested: its runs are not part of this replication.' in text  # e.g. alignment
    assert ReplicationReport(state(), num_bootstrap=200).markdown() == text


def test_convergence_curves_are_the_mean_over_seeds():
    text = ReplicationReport(state(), num_bootstrap=200).markdown()
    assert row(text, '| Flux-Multi | 3 |') == '| Flux-Multi | 3 | 30.0 | 41.0 |'  # (40 + 41 + 42) / 3
    assert row(text, '| pretraining, fixed | 1 |') == '| pretraining, fixed | 1 | 20.0 | 25.0 |'


def test_trainings_that_stayed_at_chance_are_named():
    s = state()
    assert 'Every training learned' in ReplicationReport(s, num_bootstrap=100).markdown()
    stuck = encode_predictions([(y + 1) % 6 if i % 6 else y for i, y in enumerate(LABELS)])  # 1/6 right
    s['runs']['fixed/seed1']['cells']['1:grid']['pred'] = stuck
    text = ReplicationReport(s, num_bootstrap=100).markdown()
    assert '**1 of 6 trainings did not learn**' in text and 'fixed 8x56 seed 1 (16.7%)' in text
