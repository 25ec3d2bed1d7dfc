#!/usr/bin/env python
"""The cascades of a plan against its fixed budgets on the test split, through
MMAction2's own tools/test.py with the Token Optimization switch alone.

    python tools/cascade_report.py CONFIG CHECKPOINT PLAN --out-dir DIR \
        [--max-videos N] [--latency-runs 10] [--repeats 3] [--threads 1]

For every budget the plan chose a grid for (``token_optimization.budget=B
token_optimization.plan=PLAN``) and every cascade target it calibrated
(``token_optimization.plan=PLAN token_optimization.cascade=True ...``), MMAction2's
tools/test.py runs the test split and dumps its predictions; top-1, the share of
videos per stage and the tokens come from those predictions. GMACs per view are
counted (a cascade: the embedding once plus each stage's blocks and head, weighted
by the share of videos that ran it); latency per view is timed in this process,
one view at batch 1, embedding and stages measured side by side and the median of
``--repeats`` rounds taken, so fixed budgets and cascades share one clock.
Writes DIR/cascade_test.md, .csv, .json and cascade_test.png.
"""
import argparse
import csv
import json
import os
import os.path as osp
import pickle
import statistics
import subprocess
import sys

import mmflux  # noqa: F401
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='cascades against fixed budgets on the test split')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('plan')
    p.add_argument('--out-dir', required=True)
    p.add_argument('--max-videos', type=int, default=None, help='test videos (default all)')
    p.add_argument('--latency-runs', type=int, default=10)
    p.add_argument('--repeats', type=int, default=3, help='timing rounds (median taken)')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--skip-test', action='store_true', help='reuse the dumps in --out-dir')
    p.add_argument('--skip-existing', action='store_true',
                   help='reuse the dumps in --out-dir that exist, run the others')
    return p.parse_args(argv)


def mmaction_test_tool() -> str:
    import mmaction
    return osp.join(osp.dirname(mmaction.__file__), '.mim', 'tools', 'test.py')


def run_test(args, name, options):
    """MMAction2's tools/test.py with ``--cfg-options`` only; returns the dumped predictions."""
    dump = osp.join(args.out_dir, 'dumps', f'{name}.pkl')
    if not (args.skip_test or args.skip_existing and osp.isfile(dump)):
        opts = list(options)
        if args.max_videos:
            opts.append(f'test_dataloader.dataset.indices={args.max_videos}')
        cmd = [sys.executable, mmaction_test_tool(), args.config, args.checkpoint, '--work-dir',
               osp.join(args.out_dir, 'work', name), '--dump', dump, '--cfg-options'] + opts
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
        if result.returncode != 0:
            sys.exit(f'error: {" ".join(cmd)} failed:\n{result.stderr[-3000:]}')
        print(f'{name}: {" ".join(options)}')
    with open(dump, 'rb') as f:
        return pickle.load(f)


def summarize(samples):
    good = [s for s in samples if not s.get('failed', False)]
    correct = [int(torch.as_tensor(s['pred_score']).argmax()) == int(
        torch.as_tensor(s['gt_label']).reshape(-1)[0]) for s in good]
    out = dict(num_videos=len(good), top1=sum(correct) / len(good),
               grid=list(good[0]['grid']))
    if good[0].get('cascade_stage') is not None:
        stages = len(good[0]['cascade_budgets'])
        out.update(budgets=list(good[0]['cascade_budgets']), rule=good[0]['cascade_rule'],
                   shares=[sum(s['cascade_stage'] == k for s in good) / len(good)
                           for k in range(stages)],
                   ran=[sum(k in s['cascade_ran'] for s in good) / len(good)
                        for k in range(stages)],
                   mean_tokens=sum(s['tokens_run'] for s in good) / len(good))
    else:
        out.update(budget=good[0]['token_budget'], mean_tokens=float(good[0]['num_tokens']))
    return out


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    os.makedirs(osp.join(args.out_dir, 'dumps'), exist_ok=True)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmaction.registry import MODELS
    from mmflux.evaluation.cascade import stage_gmacs, stage_latencies
    from mmflux.evaluation.to_switch import TOPlan
    from mmflux.utils.checkpoint_fit import load_for_inference
    from mmflux.utils.tables import markdown_table
    plan = TOPlan.load(args.plan)
    rows = []
    for budget, entry in sorted(plan.meta['budgets'].items(), key=lambda kv: int(kv[0])):
        res = summarize(run_test(args, f'fixed_{budget}', [
            f'token_optimization.budget={budget}', f'token_optimization.plan={args.plan}']))
        rows.append(dict(res, kind='fixed', name=f'fixed {budget}', budget=int(budget),
                         val_top1=entry['val_top1']))
    seen = {}  # targets that chose the same cascade share one test run
    for i, target in enumerate(plan.meta.get('cascade_targets', [])):
        if 'error' in target:
            continue
        key = next(k for k in ('max_gmacs', 'max_latency_ms', 'min_top1') if k in target)
        same = json.dumps([target['cascade'], target['frames'], target['side']], sort_keys=True)
        if same in seen:
            seen[same]['name'] += f', {key} {target[key]}'
            continue
        res = summarize(run_test(args, f'cascade_{i}', target['cfg_options']))
        rows.append(dict(res, kind='cascade', name=f'cascade ({key} {target[key]}',
                         val_top1=target['val_top1'], cascade=target['cascade']))
        seen[same] = rows[-1]
    for row in seen.values():
        row['name'] += ')'

    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model = MODELS.build(cfg.model)
    load_for_inference(model, args.checkpoint, map_location='cpu')
    model.eval()
    grids = {}
    for row in rows:
        frames, side = row['grid'][0], row['grid'][-1]
        budgets = row['budgets'] if row['kind'] == 'cascade' else [row['budget']]
        grids.setdefault((frames, side), set()).update(budgets)
    gmacs, timings = {}, {}
    for (frames, side), budgets in grids.items():
        budgets = sorted(budgets, key=lambda b: float('inf') if b is None else b)
        gmacs[(frames, side)] = stage_gmacs(model, frames, side, budgets)
    for _ in range(args.repeats):  # rounds over every grid: disturbances hit all settings
        for (frames, side), budgets in grids.items():
            embed, stages = stage_latencies(model, frames, side, list(budgets),
                                            runs=args.latency_runs)
            timings.setdefault((frames, side), []).append((embed, stages))
    latency = {}
    for grid, rounds in timings.items():
        embed = statistics.median(r[0] for r in rounds)
        stages = {b: statistics.median(r[1][b] for r in rounds) for b in rounds[0][1]}
        latency[grid] = (embed, stages)
    for row in rows:
        grid = (row['grid'][0], row['grid'][-1])
        embed_g, stage_g = gmacs[grid]
        embed_ms, stage_ms = latency[grid]
        if row['kind'] == 'cascade':
            pairs = list(zip(row['ran'], row['budgets']))
        else:
            pairs = [(1.0, row['budget'])]
        row['gmacs'] = embed_g + sum(r * stage_g[b] for r, b in pairs)
        row['latency_ms'] = embed_ms + sum(r * stage_ms[b] for r, b in pairs)

    from mmflux.evaluation.latency import machine_info
    machine = dict(machine_info(), cpu_capability=torch.backends.cpu.get_cpu_capability())
    header = ['setting', 'grid', 'stages (budgets)', 'rule, thresholds', 'val top-1', 'test top-1',
              'mean tokens/view', 'mean GMACs/view', 'mean ms/view', 'videos per stage (%)']
    table = []
    for row in rows:
        grid = f"{row['grid'][0]}x{row['grid'][-1]}"
        if row['kind'] == 'cascade':
            casc = row['cascade']
            stages = ' → '.join(str(b if b is not None else 'all') for b in casc['budgets'])
            rule = f"{casc['rule']} ≥ " + ', '.join(f'{t:.3g}' for t in casc['thresholds'])
            shares = ' / '.join(f'{100 * s:.0f}' for s in row['shares'])
        else:
            stages, rule, shares = str(row['budget']), '', ''
        table.append([row['name'], grid, stages, rule, f"{100 * row['val_top1']:.1f}",
                      f"{100 * row['top1']:.1f}", f"{row['mean_tokens']:.1f}",
                      f"{row['gmacs']:.4f}", f"{row['latency_ms']:.2f}", shares])
    md = markdown_table(header, table)
    with open(osp.join(args.out_dir, 'cascade_test.md'), 'w') as f:
        f.write(md + '\n')
    with open(osp.join(args.out_dir, 'cascade_test.csv'), 'w', newline='') as f:
        csv.writer(f).writerows([header] + table)
    with open(osp.join(args.out_dir, 'cascade_test.json'), 'w') as f:
        json.dump(dict(machine=machine, threads=args.threads, latency_runs=args.latency_runs,
                       repeats=args.repeats, plan=args.plan, checkpoint=args.checkpoint,
                       rows=rows), f, indent=1)
    plot(args.out_dir, rows)
    print(md)
    print(f"CPU: {machine['cpu']} ({machine['cpu_capability']}), {args.threads} thread(s)")


def plot(out_dir, rows):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in ((axes[0], 'gmacs', 'mean GMACs per view'),
                           (axes[1], 'latency_ms', 'mean ms per view (this CPU, batch 1)')):
        fixed = [(r[key], 100 * r['top1'], r['budget'])
                 for r in sorted((r for r in rows if r['kind'] == 'fixed'), key=lambda r: r['budget'])]
        ax.plot([p[0] for p in fixed], [p[1] for p in fixed], 'o-', label='fixed budgets (TO grid)')
        for x, y, b in fixed:
            ax.annotate(str(b), (x, y), textcoords='offset points', xytext=(4, 4), fontsize=8)
        for grid in sorted({tuple(r['grid']) for r in rows if r['kind'] == 'fixed at grid'}):
            pts = sorted((r[key], 100 * r['top1'], r['budget']) for r in rows
                         if r['kind'] == 'fixed at grid' and tuple(r['grid']) == grid)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], 's--', alpha=0.6,
                    label=f'fixed budgets at {grid[0]}x{grid[-1]}')
            for x, y, b in pts:
                ax.annotate(str(b), (x, y), textcoords='offset points', xytext=(4, -10), fontsize=7)
        for r in (r for r in rows if r['kind'] == 'cascade'):
            budgets = '→'.join(str(b if b is not None else 'all') for b in r['budgets'])
            ax.scatter([r[key]], [100 * r['top1']], marker='*', s=140,
                       label=f"cascade {budgets} ({r['rule']})")
        ax.set_xlabel(label)
        ax.set_ylabel('top-1 (%), test split')
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle('Per-video adaptive budget (cascade) against fixed budgets, test split',
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(osp.join(out_dir, 'cascade_test.png'), dpi=110)
    plt.close(fig)


if __name__ == '__main__':
    main()
