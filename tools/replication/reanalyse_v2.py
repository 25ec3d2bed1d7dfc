#!/usr/bin/env python
"""The v2 replication's saved predictions (docs/results.json) under v3's statistics.

Why: v2 (4 epochs, 3 seeds, no compute-matched arms) reported uncorrected tests;
this re-tests its 31 paper-claim rows, as v2 defined them, with the seeds x videos
bootstrap and Holm's correction over that family (docs/replication_v3.md)::

    python tools/replication/reanalyse_v2.py
"""
import json
import os.path as osp
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from replication import report as R  # noqa: E402
from replication.design import ROOT  # noqa: E402
from replication.significance import (benjamini_hochberg, holm,  # noqa: E402
                                      minimal_detectable_difference)

C = R.Contrast
#: v2's claim rows as v2 defined them (training effects against the fixed grid, unequal compute)
CLAIMS = (
    ('T1 Flux-Multi+TO vs fixed+TO', C('a', '', ('flux_multi', 'to'), ('fixed', 'to'), R.FRACTIONS)),
    ('T1 Flux-Single+TO vs fixed+TO', C('b', '', ('flux_single', 'to'), ('fixed', 'to'), R.FRACTIONS)),
    ('T1/11 Flux-Multi TO vs grid', C('c', '', ('flux_multi', 'to'), ('flux_multi', 'grid'))),
    ('T1/11 fixed TO vs grid', C('d', '', ('fixed', 'to'), ('fixed', 'grid'))),
    ('T2 Flux-Multi gd vs random', C('e', '', ('flux_multi', 'group_dynamic'), ('flux_multi', 'random'))),
    ('T2 fixed gd vs random', C('f', '', ('fixed', 'group_dynamic'), ('fixed', 'random'))),
    ('T2 ViT gd vs random', C('g', '', ('vit_flux_multi', 'group_dynamic'), ('vit_flux_multi', 'random'))),
    ('T3 Flux-Multi vs Flux-Single full', C('h', '', ('flux_multi', 'grid'), ('flux_single', 'grid'), ('1', ))),
    ('T5 Flux-Single vs fixed full', C('i', '', ('flux_single', 'grid'), ('fixed', 'grid'), ('1', ))),
    ('T5 Flux-Multi vs Flux-Single gd',
     C('j', '', ('flux_multi', 'group_dynamic'), ('flux_single', 'group_dynamic'))),
    ('T5 align gd', C('k', '', ('flux_multi', 'group_dynamic'), ('flux_multi_no_align', 'group_dynamic'))),
)


def main() -> None:
    with open(osp.join(ROOT, 'docs', 'results.json')) as f:
        saved = json.load(f)
    for info in saved['setup']['runs'].values():
        info['pretrain'] = 'fixed'
    report = R.ReplicationReport(dict(setup=saved['setup'], runs=saved['runs'], pretrained={}),
                                 num_bootstrap=4000)
    rows = [(name, f, report.compare(c, f)) for name, c in CLAIMS for f in c.fractions]
    ps = [c.p for _, _, c in rows]
    m = len(rows)
    mdd = [minimal_detectable_difference(c.se) for _, _, c in rows]
    mdd_holm = [minimal_detectable_difference(c.se, 0.05 / m) for _, _, c in rows]
    print(f'm = {m} claim rows; median MDD {np.median(mdd):.1f} points at alpha 0.05, '
          f'{np.median(mdd_holm):.1f} at 0.05/m')
    print('| claim | budget | Δ | 95% CI (seeds × videos) | p | Holm p | BH q | verdict |')
    print('|---|---|---|---|---|---|---|---|')
    for (name, f, c), a, q in zip(rows, holm(ps), benjamini_hochberg(ps)):
        v = 'not resolvable' if a >= 0.05 else ('supported' if c.delta > 0 else 'contradicted')
        print(f'| {name} | {f} | {c.delta:+.1f} | [{c.low:+.1f}, {c.high:+.1f}] | {c.p:.3f} | {a:.3f} '
              f'| {q:.3f} | {v} |')


if __name__ == '__main__':
    main()
