#!/usr/bin/env python
"""Evaluate one checkpoint at several token budgets with tools/test.py and print a table.

    python tools/budget_report.py CONFIG CHECKPOINT --budgets 256 128 64 32 --side 56 \
        [--to-grid 16 56] [--work-dir DIR]

For every budget two settings are run through ``tools/test.py`` (the config's
test split and views):
  * grid reduction: the most frames at ``--side`` that fit the budget, no selection;
  * Token Optimization: the larger ``--to-grid`` reduced to the budget by the selector.
Prints budget, grid, tokens, top-1 and GMACs per view, and writes DIR/budget_report.md.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Accuracy and compute across token budgets')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--budgets', type=int, nargs='+', required=True)
    p.add_argument('--side', type=int, required=True, help='side of the standard test grid')
    p.add_argument('--to-grid', type=int, nargs=2, metavar=('FRAMES', 'SIDE'),
                   help='larger grid reduced to each budget (Token Optimization)')
    p.add_argument('--work-dir', default='work_dirs/budget_report')
    return p.parse_args(argv)


def run_test(args, grid, budget, tag):
    out = osp.join(args.work_dir, f'{tag}.json')
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'test.py'), args.config, args.checkpoint,
           '--grid', str(grid[0]), str(grid[1]), '--budget', str(budget) if budget else 'all',
           '--work-dir', osp.join(args.work_dir, tag), '--out-json', out]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
        raise SystemExit(f'tools/test.py failed for {tag}: {" ".join(cmd)}')
    with open(out) as f:
        return json.load(f)['metrics']


def cost(model, grid, budget):
    """(tokens kept, GMACs) of one view, as the model reports them."""
    from mmflux.utils.flops import count_macs
    result = count_macs(model, grid[0], grid[1], grid[1], budget=budget)
    return result['tokens'], result['gmacs']


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    import mmflux  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmaction.registry import MODELS
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model = MODELS.build(cfg.model)
    from mmflux.evaluation.token_optimization import check_side, reduction_grid
    from mmflux.utils.tables import markdown_table
    try:  # the backbone owns the token geometry: reduction_grid counts with its num_tokens
        check_side(args.side, model.backbone, '--side')
    except (TypeError, ValueError) as err:
        sys.exit(f'error: {err}')
    settings = []
    for budget in args.budgets:
        reduced = reduction_grid(budget, args.side, model.backbone)
        if reduced is not None:
            settings.append((budget, 'grid reduction', reduced, None))
        if args.to_grid:
            settings.append((budget, 'TO (selector)', tuple(args.to_grid), budget))
    rows = []
    start = time.time()
    for i, (budget, method, grid, test_budget) in enumerate(settings, 1):
        tag = f'b{budget}_{grid[0]}x{grid[1]}_{"to" if test_budget else "grid"}'
        print(f'[{i}/{len(settings)}] budget {budget}: {method} {grid[0]}x{grid[1]} '
              f'(elapsed {time.time() - start:.0f}s)', flush=True)
        metrics = run_test(args, grid, test_budget, tag)
        tokens, gmacs = cost(model, grid, test_budget)
        rows.append((budget, method, f'{grid[0]}x{grid[1]}', tokens,
                     100 * metrics.get('acc/top1', float('nan')), gmacs))
    table = markdown_table(
        ['budget', 'method', 'grid (T x side)', 'tokens', 'top-1 (%)', 'GMACs/view'],
        [[b, m, g, t, f'{a:.1f}', f'{c:.4f}'] for b, m, g, t, a, c in rows])
    with open(osp.join(args.work_dir, 'budget_report.md'), 'w') as f:
        f.write(table + '\n')
    print(table)
    print(f'written {osp.join(args.work_dir, "budget_report.md")}')


if __name__ == '__main__':
    main()
