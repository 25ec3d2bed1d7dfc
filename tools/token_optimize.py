#!/usr/bin/env python
"""Token Optimization: the best sampling grid for each token budget.

    python tools/token_optimize.py CONFIG CHECKPOINT --budgets 128 64 32 \
        --frames 4 8 12 16 --sides 42 56 70 [--selectors GroupDynamicSelector RandomSelector] \
        [--select-ann VAL_LIST] [--eval-ann TEST_LIST] [--out-dir DIR] [--max-videos N]

For every budget and selector, each candidate grid with at least as many tokens
as the budget is scored on the selection split (default: the config's val list);
the best one is reported on the evaluation split (default: the test list), which
must be a different list. Plain grid reduction at the standard side is reported on
the evaluation split too. Writes DIR/to_table.md, to_table.csv, to_plot.png
(top-1 vs GMACs) and to_overrides.json (``--cfg-options`` per budget).
"""
import argparse
import csv
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import mmflux  # noqa: E402,F401
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

from mmaction.registry import MODELS  # noqa: E402
from mmflux.evaluation.token_optimization import TokenOptimizer, overrides_for  # noqa: E402
from mmflux.utils.checkpoint_fit import CheckpointMismatchError, load_for_inference  # noqa: E402
from mmflux.utils.flops import count_macs  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Token Optimization search')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--budgets', type=int, nargs='+', required=True)
    p.add_argument('--frames', type=int, nargs='+', default=[2, 4, 6, 8, 12, 16])
    p.add_argument('--sides', type=int, nargs='+', default=None,
                   help='candidate sides (default: the test side and +-1 and +2 patches)')
    p.add_argument('--standard-side', type=int, default=None,
                   help='side of plain grid reduction (default: the config\'s test side)')
    p.add_argument('--selectors', nargs='+', default=['GroupDynamicSelector', 'RandomSelector'])
    p.add_argument('--select-ann', help='selection split (default: val_dataloader ann_file)')
    p.add_argument('--eval-ann', help='evaluation split (default: test_dataloader ann_file)')
    p.add_argument('--max-videos', type=int, default=None, help='videos per split (default all)')
    p.add_argument('--num-clips', type=int, default=1, help='temporal views per video')
    p.add_argument('--max-ratio', type=float, default=8.0,
                   help='skip grids with more than this many times the budget in tokens')
    p.add_argument('--out-dir', default='work_dirs/token_optimization')
    p.add_argument('--device', default='cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def test_side(cfg: Config) -> int:
    for step in cfg.test_dataloader['dataset']['pipeline']:
        if step.get('type') in ('CenterCrop', 'ThreeCrop', 'TenCrop'):
            size = step['crop_size']
            return size if isinstance(size, int) else size[0]
    return 224


def write_outputs(out_dir, cfg, model, choices, baselines):
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for base in baselines:
        base.gmacs = count_macs(model, base.frames, base.side, base.side, budget=None)['gmacs']
        rows.append(('grid reduction', base))
    for choice in choices:
        rep = choice.reported
        rep.gmacs = count_macs(model, rep.frames, rep.side, rep.side, budget=rep.budget)['gmacs']
        rows.append((f'TO ({rep.selector})', rep))
    header = ['budget', 'method', 'grid (T x side)', 'tokens kept', 'selection top-1',
              'eval top-1', 'GMACs/view']
    table = []
    for method, r in rows:
        sel = next((c.chosen.top1 for c in choices
                    if c.reported is r and c.chosen is not None), None)
        table.append([r.budget, method, f'{r.frames}x{r.side}', r.kept_tokens,
                      '' if sel is None else f'{100 * sel:.1f}', f'{100 * r.top1:.1f}',
                      f'{r.gmacs:.3f}'])
    table.sort(key=lambda row: (-row[0], row[1]))
    with open(osp.join(out_dir, 'to_table.csv'), 'w', newline='') as f:
        csv.writer(f).writerows([header] + table)
    md = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    md += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in table]
    with open(osp.join(out_dir, 'to_table.md'), 'w') as f:
        f.write('\n'.join(md) + '\n')
    overrides = {str(c.budget): dict(selector=c.selector, frames=c.reported.frames,
                                     side=c.reported.side, eval_top1=c.reported.top1,
                                     cfg_options=overrides_for(c.reported, cfg))
                 for c in choices if c.selector == choices[0].selector}
    candidates = [r.as_dict() for c in choices for r in c.candidates]
    with open(osp.join(out_dir, 'to_overrides.json'), 'w') as f:
        json.dump(dict(chosen=overrides, candidates=candidates,
                       baselines=[b.as_dict() for b in baselines]), f, indent=2)
    plot(out_dir, rows)
    return '\n'.join(md)


def plot(out_dir, rows):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    lines = {}
    for method, r in rows:
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


def main(argv=None):
    args = parse_args(argv)
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
    side = test_side(cfg)
    sides = args.sides or sorted({side - 14, side, side + 14, side + 28} - {0})
    select_ann = args.select_ann or cfg.val_dataloader['dataset']['ann_file']
    eval_ann = args.eval_ann or cfg.test_dataloader['dataset']['ann_file']
    optimizer = TokenOptimizer(cfg, model, device=args.device, num_clips=args.num_clips,
                               max_videos=args.max_videos)
    choices, baselines = optimizer.search(args.budgets, args.frames, sides, select_ann, eval_ann,
                                          selectors=args.selectors,
                                          standard_side=args.standard_side or side,
                                          max_ratio=args.max_ratio)
    table = write_outputs(args.out_dir, cfg, model, choices, baselines)
    print(table)
    print(f'written: {args.out_dir}/to_table.md, to_table.csv, to_plot.png, to_overrides.json')


if __name__ == '__main__':
    main()
