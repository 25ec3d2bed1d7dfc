"""The replication report is computed from the saved predictions alone."""
import numpy as np

from mmflux.evaluation.replication_report import FRACTIONS, ReplicationReport, encode_predictions

N = 120
LABELS = [i % 6 for i in range(N)]
BUDGETS = {'1': 256, '1/2': 128, '1/4': 64, '1/8': 32}


def cells(right):
    """Every cell of one run; ``right(method, draw)`` -> boolean per video."""
    out = {}
    for f in FRACTIONS:
        keys = [(f'{f}:grid', 'grid', 0), (f'{f}:to', 'to', 0)]
        if f != '1':
            keys += [(f'{f}:group_dynamic', 'group_dynamic', 0)]
            keys += [(f'{f}:random:{d}', 'random', d) for d in range(2)]
        for key, method, draw in keys:
            ok = right(method, draw)
            pred = [y if o else (y + 1) % 6 for y, o in zip(LABELS, ok)]
            out[key] = dict(grid='8x56', kept=BUDGETS[f], pred=encode_predictions(pred))
    return out


def state():
    half = np.arange(N) < N // 2
    runs = {}
    for seed in (0, 1, 2):
        runs[f'flux_multi/seed{seed}'] = dict(run='flux_multi', seed=seed,
                                              cells=cells(lambda m, d: np.ones(N, bool)),
                                              compute=dict(steps=10, token_passes=1, train_seconds=1,
                                                           eval_seconds=1))
        # fixed: right on the first half; its random draws: one all right, one all wrong
        runs[f'fixed/seed{seed}'] = dict(
            run='fixed', seed=seed, compute=dict(steps=10, token_passes=1, train_seconds=1,
                                                 eval_seconds=1),
            cells=cells(lambda m, d: np.full(N, d == 0) if m == 'random' else half))
    setup = dict(labels=LABELS, budgets=BUDGETS, seeds=[0, 1, 2], epochs=1, draws=2, num_classes=6,
                 quick=True, base_grid='8x56', to_frames=[8], to_sides=[56], videos=[],
                 runs=dict(fixed=dict(label='fixed 8x56', align=False, flexible=False, vit=False,
                                      train_budgets=[256]),
                           flux_multi=dict(label='Flux-Multi', align=True, flexible=True, vit=False,
                                           train_budgets=[256, 128, 64])))
    return dict(setup=setup, runs=runs, commands=['cmd'], finished=True, seconds=60.0)


def test_accuracies_and_the_mean_over_random_draws():
    report = ReplicationReport(state())
    assert report.top1('flux_multi', 'to', '1/4').mean == 100.0
    assert report.top1('fixed', 'to', '1/4').mean == 50.0
    assert report.top1('fixed', 'random', '1/4').mean == 50.0  # (100 + 0) / 2 draws
    # at full budget the selectors keep every token: they read the full grid
    assert report.top1('fixed', 'group_dynamic', '1').mean == report.top1('fixed', 'grid', '1').mean


def test_the_markdown_states_each_contrast_with_its_verdict():
    text = ReplicationReport(state()).markdown()
    row = next(line for line in text.splitlines()
               if line.startswith('| Flux-Multi vs fixed grid, both with TO | 64 (1/4)'))
    assert '**+50.0** (3 seeds)' in row and row.endswith('| supported |')
    # the random side is an average of draws: no McNemar there
    row = next(line for line in text.splitlines() if line.startswith('| fixed grid: group-dyn vs random'))
    assert 'random: mean of draws' in row
    # runs this replication did not train are left out, not shown as failures
    assert 'trained at that budget' not in text and "ViT: Flux-Multi" not in text
    assert ReplicationReport(state()).markdown() == text  # a function of the saved state


def test_trainings_that_stayed_at_chance_are_named():
    s = state()
    assert 'Every training learned' in ReplicationReport(s).markdown()
    stuck = encode_predictions([(y + 1) % 6 if i % 6 else y for i, y in enumerate(LABELS)])  # 1/6 right
    s['runs']['fixed/seed1']['cells']['1:grid']['pred'] = stuck
    assert '**1 of 6 trainings did not learn**' in ReplicationReport(s).markdown()
    assert 'fixed 8x56 seed 1 (16.7%)' in ReplicationReport(s).markdown()
