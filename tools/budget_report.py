#!/usr/bin/env python
"""Evaluate one checkpoint at several token budgets and print a table.

    python tools/budget_report.py CONFIG CHECKPOINT --budgets 256 128 64 32 --side 56 \
        [--to-grid 16 56] [--work-dir DIR] [--device cpu] [--per-grid]

For every budget two settings are evaluated on the config's test split, with its
views (clips x crops) and its own selector:
  * grid reduction: the most frames at ``--side`` that fit the budget, no selection;
  * Token Optimization: the larger ``--to-grid`` reduced to the budget by the selector.

All settings run in this one process, and each test video is decoded once for all
of them (:class:`mmflux.evaluation.token_optimization.TokenOptimizer`): the same
top-1 as one ``tools/test.py --grid T S --budget B`` run per setting
(tests/tools/test_budget_report.py compares them), without a process start, a
model load and a decode of the test split per setting. Prints budget, grid,
tokens, top-1 and GMACs per view, and writes DIR/budget_report.md. ``--per-grid``
gives every setting its own dataloader (the config's test workers) instead.
"""
import argparse
import os
import os.path as osp
import sys
import time

import mmflux  # noqa: F401
import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import init_default_scope

from mmaction.registry import MODELS
from mmflux.evaluation.token_optimization import Setting, TokenOptimizer, check_side, reduction_grid
from mmflux.utils.checkpoint_fit import CheckpointMismatchError, load_for_inference
from mmflux.utils.flops import count_macs
from mmflux.utils.tables import markdown_table


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Accuracy and compute across token budgets')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--budgets', type=int, nargs='+', required=True)
    p.add_argument('--side', type=int, required=True, help='side of the standard test grid')
    p.add_argument('--to-grid', type=int, nargs=2, metavar=('FRAMES', 'SIDE'),
                   help='larger grid reduced to each budget (Token Optimization)')
    p.add_argument('--work-dir', default='work_dirs/budget_report')
    p.add_argument('--device', help='default: cuda if available, else cpu')
    p.add_argument('--per-grid', action='store_true',
                   help="one dataloader per setting, with the config's test workers, instead of "
                        'one decode per video in this process (for large test sets on a GPU)')
    return p.parse_args(argv)


def report_settings(args, backbone):
    """(budget, setting) pairs: grid reduction and, with ``--to-grid``, TO per budget."""
    settings = []
    for budget in args.budgets:
        reduced = reduction_grid(budget, args.side, backbone)
        if reduced is not None:
            settings.append((budget, Setting(reduced[0], reduced[1], None, None, 'grid reduction')))
        if args.to_grid:
            settings.append((budget, Setting(args.to_grid[0], args.to_grid[1], budget, None,
                                             'TO (selector)')))
    return settings


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model = MODELS.build(cfg.model)
    try:  # the backbone owns the token geometry: reduction_grid counts with its num_tokens
        check_side(args.side, model.backbone, '--side')
        if args.to_grid:
            check_side(args.to_grid[1], model.backbone, '--to-grid SIDE')
        load_for_inference(model, args.checkpoint)
    except (TypeError, ValueError, CheckpointMismatchError) as err:
        sys.exit(f'error: {err}')
    settings = report_settings(args, model.backbone)
    test_loader = cfg.test_dataloader
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    optimizer = TokenOptimizer(cfg, model, device=device, num_clips=None,
                               batch_size=test_loader.get('batch_size', 4),
                               num_workers=test_loader.get('num_workers', 0),
                               decode_once=not args.per_grid)
    print_log(f'[budget report] {len(settings)} settings on {test_loader.dataset.ann_file} ({device}), '
              + ('a dataloader per setting' if args.per_grid else 'each video decoded once'),
              logger='current')
    start = time.perf_counter()
    results = optimizer.evaluate_settings(test_loader.dataset.ann_file, [s for _, s in settings],
                                          'test')
    print_log(f'[budget report] evaluated in {time.perf_counter() - start:.0f} s', logger='current')
    rows = []
    for (budget, setting), result in zip(settings, results):
        cost = count_macs(model, setting.frames, setting.side, setting.side, budget=setting.budget)
        rows.append([budget, setting.method, f'{setting.frames}x{setting.side}', cost['tokens'],
                     f'{100 * result.top1:.1f}', f'{cost["gmacs"]:.4f}'])
    failed = results[0].num_failed if results else 0
    table = markdown_table(
        ['budget', 'method', 'grid (T x side)', 'tokens', 'top-1 (%)', 'GMACs/view'], rows)
    with open(osp.join(args.work_dir, 'budget_report.md'), 'w') as f:
        f.write(table + '\n')
    print(table)
    print(f'{results[0].num_videos if results else 0} test videos'
          + (f', {failed} left out (could not be decoded; see the log)' if failed else ''))
    print(f'written {osp.join(args.work_dir, "budget_report.md")}')
    return dict(rows=rows, predictions=optimizer.predictions)


if __name__ == '__main__':
    main()
