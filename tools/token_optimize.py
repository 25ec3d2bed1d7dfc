#!/usr/bin/env python
"""Token Optimization: the best sampling grid for each token budget, and a plan.

    python tools/token_optimize.py CONFIG CHECKPOINT --budgets 128 64 32 \
        --frames 4 8 12 16 [--sides 42 56 70] [--selectors GroupDynamicSelector RandomSelector] \
        [--select-ann VAL_LIST] [--eval-ann TEST_LIST] [--out-dir DIR] [--max-videos N] \
        [--latency [--max-latency-ms 5 10] [--max-gmacs 0.1]] [--compare-per-grid]
    python tools/token_optimize.py CONFIG CHECKPOINT --replan DIR/to_plan.json --max-latency-ms 8 12

For every budget and selector, each candidate grid with at least as many tokens
as the budget is scored on the selection split (default: the config's val list);
the best one is reported on the evaluation split (default: the test list), which
must be a different list. Plain grid reduction at the standard side is reported on
the evaluation split too. Each video is decoded once per split for all candidates
(``--per-grid`` decodes it once per candidate, as before; ``--compare-per-grid``
runs both and prints their times side by side).

Writes DIR/to_plan.json (every candidate with selection top-1, GMACs and, with
``--latency``, the measured latency on this machine; the choice per budget and
per target; the ``--cfg-options`` that run it), to_table.md/.csv, to_plot.png
(top-1 vs GMACs), to_latency.png (top-1 vs latency, Pareto front, chosen
points) and to_predictions.csv (per video and setting, for audits). ``--replan``
chooses new targets from a plan's measured settings without searching again.
"""
import argparse
import csv
import os
import os.path as osp
import sys
import time

import mmflux  # noqa: F401
import torch
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar

from mmaction.registry import MODELS
from mmflux.deployment.latency import RUNTIMES, measure_latency
from mmflux.evaluation.latency import machine_info
from mmflux.evaluation.grid_config import read_test_grid
from mmflux.evaluation.to_switch import TOPlan, cfg_options, pareto_front, resolved_config
from mmflux.evaluation.token_optimization import (TokenOptimizer, candidate_sides,
                                                  check_frames, check_side)
from mmflux.utils.token_geometry import token_geometry
from mmflux.utils.checkpoint_fit import CheckpointMismatchError, load_for_inference
from mmflux.utils.flops import count_macs
from mmflux.utils.tables import markdown_table


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Token Optimization search')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--budgets', type=int, nargs='+', help='token budgets to search (required '
                   'unless --replan)')
    p.add_argument('--frames', type=int, nargs='+', default=[2, 4, 6, 8, 12, 16])
    p.add_argument('--sides', type=int, nargs='+', default=None,
                   help='candidate sides, multiples of the patch size (default: the test side '
                   'and -1, +1, +2 patches)')
    p.add_argument('--standard-side', type=int, default=None,
                   help='side of plain grid reduction (default: the config\'s test side)')
    p.add_argument('--selectors', nargs='+', default=['GroupDynamicSelector', 'RandomSelector'])
    p.add_argument('--select-ann', help='selection split (default: val_dataloader ann_file)')
    p.add_argument('--eval-ann', help='evaluation split (default: test_dataloader ann_file)')
    p.add_argument('--max-videos', type=int, default=None, help='videos per split (default all)')
    p.add_argument('--num-clips', type=int, default=1, help='temporal views per video')
    p.add_argument('--max-ratio', type=float, default=8.0,
                   help='skip grids with more than this many times the budget in tokens')
    p.add_argument('--per-grid', action='store_true',
                   help='decode every video once per candidate (the old search)')
    p.add_argument('--compare-per-grid', action='store_true',
                   help='also run the per-grid search and print both times and their ratio')
    p.add_argument('--latency', action='store_true',
                   help='measure each candidate\'s latency (batch 1, one view) on this machine')
    p.add_argument('--latency-runs', type=int, default=10)
    p.add_argument('--runtime', default='pytorch', choices=sorted(RUNTIMES),
                   help='runtime the latency is measured with (eager PyTorch by default)')
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')
    p.add_argument('--max-latency-ms', type=float, nargs='+', default=[],
                   help='latency targets: the most accurate setting under each goes in the plan')
    p.add_argument('--max-gmacs', type=float, nargs='+', default=[], help='GMACs targets')
    p.add_argument('--replan', metavar='PLAN',
                   help='no search: recompute the targets of an existing plan and its plot')
    p.add_argument('--out-dir', default='work_dirs/token_optimization')
    p.add_argument('--device', default='cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def gmacs_counter(model):
    """``gmacs(frames, side, budget)`` of one view, each setting counted once."""
    cache = {}

    def gmacs(frames, side, budget):
        if (frames, side, budget) not in cache:
            cache[(frames, side, budget)] = count_macs(model, frames, side, side,
                                                       budget=budget)['gmacs']
        return cache[(frames, side, budget)]
    return gmacs


def run_search(args, cfg, model, sides, select_ann, eval_ann, decode_once):
    # the choice rule breaks accuracy ties by GMACs, as the plan does
    optimizer = TokenOptimizer(cfg, model, device=args.device, num_clips=args.num_clips,
                               max_videos=args.max_videos, decode_once=decode_once,
                               gmacs=args.gmacs)
    start = time.perf_counter()
    choices, baselines = optimizer.search(args.budgets, args.frames, sides, select_ann, eval_ann,
                                          selectors=args.selectors,
                                          standard_side=args.standard_side, max_ratio=args.max_ratio)
    return optimizer, choices, baselines, time.perf_counter() - start


def measure(args, model, choices, baselines):
    """GMACs (and latency) of every candidate and baseline, each grid/budget once."""
    cost = {}
    keys = {(r.frames, r.side, r.budget) for c in choices for r in c.candidates}
    keys |= {(b.frames, b.side, None) for b in baselines}
    bar = ProgressBar(len(keys)) if args.latency else None
    for frames, side, budget in sorted(keys, key=str):
        entry = dict(gmacs=args.gmacs(frames, side, budget))
        if args.latency:
            entry['latency_ms'] = measure_latency(model, frames, side, budget,
                                                  runs=args.latency_runs, runtime=args.runtime,
                                                  device=args.device)['median_ms']
            bar.update()
        cost[(frames, side, budget)] = entry
    if bar is not None:
        print()
    for r in [r for c in choices for r in c.candidates + [c.reported]] + baselines:
        entry = cost[(r.frames, r.side, None if r.method == 'grid_reduction' else r.budget)]
        r.gmacs, r.latency_ms = entry['gmacs'], entry.get('latency_ms')
    return cost


def build_plan(args, cfg, geometry, choices, baselines, times):
    reported = {(c.budget, c.selector): c for c in choices}
    settings = []
    for c in choices:
        for r in c.candidates:
            chosen = (r.frames, r.side) == (c.chosen.frames, c.chosen.side)
            settings.append(dict(
                budget=r.budget, frames=r.frames, side=r.side, selector=r.selector,
                val_top1=r.top1, eval_top1=c.reported.top1 if chosen else None,
                gmacs=r.gmacs, latency_ms=r.latency_ms, grid_tokens=r.grid_tokens,
                kept_tokens=r.kept_tokens, chosen_for_budget=chosen))
    plan = TOPlan(settings, dict(
        config=args.config, checkpoint=args.checkpoint,
        patch_size=geometry.patch_size, tubelet_size=geometry.tubelet_size,
        selection_split=args.select_ann, evaluation_split=args.eval_ann,
        num_clips=args.num_clips, machine=machine_info(args.runtime, args.device)
        if args.latency else None,
        latency=dict(batch=1, views=1, statistic='median', runs=args.latency_runs, warmup=3)
        if args.latency else None,
        search_seconds=times))
    out = osp.join(args.out_dir, 'to_plan.json')
    plan.path = out
    budgets = {}
    for budget in args.budgets:
        best = plan.choose(budget=budget)
        rep = reported[(budget, best['selector'])].reported
        budgets[str(budget)] = dict(best, eval_top1=rep.top1, cfg_options=cfg_options(
            budget, plan=out))
    plan.meta.update(budgets=budgets, targets=choose_targets(args, plan, out),
                     baselines=[b.as_dict() for b in baselines],
                     grid_reduction_side=args.standard_side)
    plan.save(out)
    return plan


def choose_targets(args, plan, out):
    """The most accurate setting of the plan under each latency / GMACs target."""
    targets = []
    for key, values in (('max_latency_ms', args.max_latency_ms), ('max_gmacs', args.max_gmacs)):
        for value in values:
            try:
                best = plan.choose(**{key: value})
            except ValueError as err:
                targets.append({key: value, 'error': str(err)})
                continue
            targets.append({key: value, **best, 'cfg_options': [
                f'token_optimization.plan={out}', f'token_optimization.{key}={value}']})
    return targets


def write_tables(out_dir, choices, baselines):
    rows = [('grid reduction', b, None) for b in baselines]
    rows += [(f'TO ({c.selector})', c.reported, c.chosen.top1) for c in choices]
    header = ['budget', 'method', 'grid (T x side)', 'tokens kept', 'selection top-1',
              'eval top-1', 'GMACs/view', 'latency ms/view']
    table = [[r.budget, m, f'{r.frames}x{r.side}', r.kept_tokens,
              '' if sel is None else f'{100 * sel:.1f}', f'{100 * r.top1:.1f}', f'{r.gmacs:.3f}',
              '' if r.latency_ms is None else f'{r.latency_ms:.2f}'] for m, r, sel in rows]
    table.sort(key=lambda row: (-row[0], row[1]))
    with open(osp.join(out_dir, 'to_table.csv'), 'w', newline='') as f:
        csv.writer(f).writerows([header] + table)
    md = markdown_table(header, table)
    with open(osp.join(out_dir, 'to_table.md'), 'w') as f:
        f.write(md + '\n')
    plot_gmacs(out_dir, rows)
    return md


def write_predictions(out_dir, rows):
    path = osp.join(out_dir, 'to_predictions.csv')
    keys = ['split', 'video', 'label', 'pred', 'score', 'budget', 'frames', 'side', 'selector',
            'method', 'seed', 'kept']
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return path


def plot_gmacs(out_dir, rows):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    lines = {}
    for method, r, _ in rows:
        lines.setdefault(method, []).append((r.gmacs, 100 * r.top1))
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, points in sorted(lines.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker='o', label=method)
    ax.set_xlabel('GMACs per view')
    ax.set_ylabel('top-1 (%) on the evaluation split')
    ax.set_title('Accuracy vs compute: with and without Token Optimization')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(osp.join(out_dir, 'to_plot.png'), dpi=120)
    plt.close(fig)


def plot_latency(out_dir, plan):
    """Selection-split top-1 against latency: every candidate, the Pareto front, the choices."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    settings = [s for s in plan.settings if s.get('latency_ms') is not None]
    if not settings:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    markers = {'GroupDynamicSelector': 'o', 'RandomSelector': 's'}
    budgets = sorted({s['budget'] for s in settings}, reverse=True)
    colors = dict(zip(budgets, plt.cm.viridis([i / max(len(budgets) - 1, 1)
                                                for i in range(len(budgets))])))
    for sel in sorted({s['selector'] for s in settings}):
        for b in budgets:
            pts = [s for s in settings if s['selector'] == sel and s['budget'] == b]
            if pts:
                ax.scatter([s['latency_ms'] for s in pts], [100 * s['val_top1'] for s in pts],
                           marker=markers.get(sel, '^'), color=colors[b], alpha=0.55, s=28,
                           label=f'{b} tokens, {sel.replace("Selector", "")}')
    front = pareto_front(settings)
    ax.plot([s['latency_ms'] for s in front], [100 * s['val_top1'] for s in front], 'k--', lw=1.2,
            label='Pareto front')
    points = {}  # one mark per chosen setting, naming every target that chose it
    for target in plan.meta.get('targets', []):
        if 'max_latency_ms' in target and 'error' not in target:
            ax.axvline(target['max_latency_ms'], color='tab:red', lw=0.8, alpha=0.5)
            key = (target['latency_ms'], target['val_top1'], target['frames'], target['side'],
                   target['budget'])
            points.setdefault(key, []).append(f"{target['max_latency_ms']:g}")
    for (lat, top1, frames, side, budget), limits in points.items():
        ax.scatter([lat], [100 * top1], s=170, facecolors='none', edgecolors='tab:red', lw=2)
        ax.annotate(f"<= {', '.join(limits)} ms: {frames}x{side} @ {budget} tokens",
                    (lat, 100 * top1), textcoords='offset points', xytext=(8, -4), fontsize=8,
                    color='tab:red')
    machine = plan.meta.get('machine') or {}
    ax.set_xlabel(f"latency per view, ms (batch 1, median; {machine.get('runtime', '?')}, "
                  f"{machine.get('torch_threads', '?')} threads)")
    ax.set_ylabel('top-1 (%) on the selection split')
    ax.set_title('Token Optimization settings: accuracy vs latency on this machine', fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc='lower right')
    fig.tight_layout()
    path = osp.join(out_dir, 'to_latency.png')
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def replan(args):
    plan = TOPlan.load(args.replan)
    plan.meta['targets'] = choose_targets(args, plan, args.replan)
    plan.save(args.replan)
    path = plot_latency(osp.dirname(osp.abspath(args.replan)), plan)
    for target in plan.meta['targets']:
        print(f'target {target}')
    print(f'written: {args.replan}, {path}')


def main(argv=None):
    args = parse_args(argv)
    if args.replan:
        return replan(args)
    if not args.budgets:
        sys.exit('error: --budgets is required (or --replan PLAN)')
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    logger = MMLogger.get_instance('mmflux_to', log_level='INFO')
    model = MODELS.build(cfg.model)
    try:
        load_for_inference(model, args.checkpoint, map_location='cpu', logger=logger)
    except CheckpointMismatchError as err:
        sys.exit(f'error: {err}')
    model.eval()
    try:
        geometry = token_geometry(model.backbone)  # the backbone owns patch and tubelet size
    except TypeError as err:
        sys.exit(f'error: {err}')
    grid = read_test_grid(resolved_config(cfg))
    side = grid.side if grid else 224
    sides = args.sides or candidate_sides(side, geometry)
    standard_what = '--standard-side' if args.standard_side else \
        "the config's test side (the default --standard-side)"
    args.standard_side = args.standard_side or side
    try:
        for s in sides:
            check_side(s, geometry, '--sides' if args.sides else 'candidate side')
        check_side(args.standard_side, geometry, standard_what)
        for t in args.frames:
            check_frames(t, geometry, '--frames')
    except ValueError as err:
        sys.exit(f'error: {err} (the backbone {type(model.backbone).__name__} has patch_size '
                 f'{geometry.patch_size}, tubelet_size {geometry.tubelet_size})')
    args.select_ann = args.select_ann or cfg.val_dataloader['dataset']['ann_file']
    args.eval_ann = args.eval_ann or cfg.test_dataloader['dataset']['ann_file']
    os.makedirs(args.out_dir, exist_ok=True)
    args.gmacs = gmacs_counter(model)
    times = {}
    optimizer, choices, baselines, times['decode_once_s'] = run_search(
        args, cfg, model, sides, args.select_ann, args.eval_ann, decode_once=not args.per_grid)
    if args.per_grid:
        times = dict(per_grid_s=times.pop('decode_once_s'))
    if args.compare_per_grid and not args.per_grid:
        _, ref_choices, ref_base, times['per_grid_s'] = run_search(
            args, cfg, model, sides, args.select_ann, args.eval_ann, decode_once=False)
        same = [(c.chosen.frames, c.chosen.side, c.reported.top1) for c in choices] == \
            [(c.chosen.frames, c.chosen.side, c.reported.top1) for c in ref_choices] and \
            [b.top1 for b in baselines] == [b.top1 for b in ref_base]
        times['same_results'] = same
        times['ratio'] = times['per_grid_s'] / times['decode_once_s']
    measure(args, model, choices, baselines)
    plan = build_plan(args, cfg, geometry, choices, baselines, times)
    table = write_tables(args.out_dir, choices, baselines)
    write_predictions(args.out_dir, optimizer.predictions)
    plot_latency(args.out_dir, plan)
    print(table)
    for budget, best in plan.meta['budgets'].items():
        print(f'budget {budget}: {best["frames"]}x{best["side"]} {best["selector"]}  '
              f'--cfg-options {" ".join(best["cfg_options"])}')
    for target in plan.meta['targets']:
        print(f'target {target}')
    if 'ratio' in times:
        print(f'search time on {machine_info()["cpu"]} ({torch.get_num_threads()} threads): '
              f'per-grid {times["per_grid_s"]:.1f} s, decode-once {times["decode_once_s"]:.1f} s, '
              f'ratio {times["ratio"]:.2f}x; same results: {times["same_results"]}')
    print(f'written: {args.out_dir}/to_plan.json, to_table.md, to_table.csv, to_plot.png, '
          f'to_latency.png, to_predictions.csv')


if __name__ == '__main__':
    main()
