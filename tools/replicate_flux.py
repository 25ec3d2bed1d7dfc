#!/usr/bin/env python
"""Small-scale replication of the paper's claims on the embedded motion dataset.

    python tools/replicate_flux.py [--out work_dirs/replication] [--seeds 0 1] [--quick]

1. generates the large motion dataset (9 classes, a few thousand clips);
2. trains, at the same training compute (patch-token passes per run):
   fixed-grid baseline, Flux-Single, Flux-Multi (FluxViT), and MMAction2's own
   ViT with a fixed grid and with Flux-Multi (through configuration only);
3. evaluates every run at 1, 1/2, 1/4 and 1/8 of the baseline's tokens with plain
   grid reduction, random selection, group-dynamic selection (both on the
   standard grid) and the grid that tools/token_optimize.py picks on the val split;
4. writes OUT/results.md (summary over seeds, raw tables, commands, seeds, wall times),
   OUT/results.png (top-1 against budget) and OUT/results.json, after every run.

``--quick`` runs a reduced version (tiny data, one short epoch, one seed) in minutes.
``--resume`` keeps the runs already in OUT/results.json (a run cut off is trained again);
``--report-only`` rewrites the report from OUT/results.json.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BASE_CONFIG = osp.join(ROOT, 'configs', 'fluxvit', 'fluxvit-tiny_synthetic.py')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    p.add_argument('--out', default=osp.join(ROOT, 'work_dirs', 'replication'))
    p.add_argument('--data', default=osp.join(ROOT, 'data', 'synthetic_motion_large'))
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    p.add_argument('--multi-epochs', type=int, default=None,
                   help='epochs of the Flux-Multi runs; the others get the same token-passes')
    p.add_argument('--runs', nargs='+', default=None, help='subset of runs to train')
    p.add_argument('--quick', action='store_true', help='reduced version for CI')
    p.add_argument('--resume', action='store_true',
                   help='keep the finished runs recorded in OUT/results.json')
    p.add_argument('--report-only', action='store_true',
                   help='rewrite results.md and results.png from OUT/results.json')
    args = p.parse_args(argv)
    # the generated configs name their bases by path: relative paths would be read
    # relative to the config's own folder
    args.out, args.data = osp.abspath(args.out), osp.abspath(args.data)
    return args


class Replication:

    def __init__(self, args) -> None:
        self.args = args
        self.quick = args.quick
        self.py = sys.executable
        self.commands: List[str] = []
        self.times: Dict[str, float] = {}
        os.makedirs(args.out, exist_ok=True)
        from mmengine.config import Config
        self.base = base = Config.fromfile(BASE_CONFIG)  # read once; the runs override it
        self.patch = base.model.backbone.get('patch_size', 14)
        self.tubelet = base.model.backbone.get('tubelet_size', 1)
        self.train_budgets = tuple(base.model.train_cfg.budgets)
        self.side = 56
        self.frames = 8
        self.base_tokens = self.frames // self.tubelet * (self.side // self.patch)**2  # 256
        fractions = (1, 4) if self.quick else (1, 2, 4, 8)
        self.budgets = [self.base_tokens // d for d in fractions]  # 256, 128, 64, 32

    # ------------------------------------------------------------------ utils
    def run(self, cmd: List[str], tag: str) -> str:
        printable = ' '.join(cmd).replace(ROOT + '/', '')
        self.commands.append(printable)
        print(f'[replication] {tag}: {printable}', flush=True)
        start = time.time()
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        self.times[tag] = self.times.get(tag, 0.0) + time.time() - start
        if result.returncode != 0:
            sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
            raise SystemExit(f'{tag} failed')
        return result.stdout

    def data(self) -> None:
        sizes = (['--num-train', '48', '--num-val', '18', '--num-test', '18', '--num-classes', '6']
                 if self.quick else
                 ['--num-train', '1800', '--num-val', '300', '--num-test', '300', '--num-classes', '9'])
        self.run([self.py, 'tools/generate_synthetic_data.py', '--out', self.args.data] + sizes, 'data')
        with open(osp.join(self.args.data, 'meta.json')) as f:
            self.num_classes = len(json.load(f)['classes'])

    # ------------------------------------------------------------------ runs
    def run_specs(self) -> Dict[str, Dict]:
        """Each run: overrides of the tiny synthetic config (``model`` and
        ``train_dataloader`` dicts) and its compute per clip (patch-token passes per
        training step)."""
        fixed = dict(batch_sampler=dict(frames=self.frames, sides=self.side, token_window=None))
        single = dict(cls_head=dict(head_budgets=(self.base_tokens, )),
                      train_cfg=dict(budgets=(self.base_tokens, ), heads=(0, )))
        flux_backbone = self.base.model.backbone
        arch = flux_backbone.arch  # same width/depth as FluxViT
        # the same initial residual scale (MMAction2's ViT calls LayerScale init_values): without it
        # the from-scratch ViT stayed at chance under both trainings in the first full run
        layer_scale = flux_backbone.get('layer_scale_init_value', 0.0)
        vit = dict(backbone=dict(
            _delete_=True, type='SelectiveVisionTransformer', selector=dict(type='GroupDynamicSelector'),
            vit=dict(type='VisionTransformer', img_size=56, patch_size=self.patch, num_frames=8,
                     tubelet_size=self.tubelet,
                     embed_dims=arch['embed_dims'], depth=arch['depth'], num_heads=arch['num_heads'],
                     init_values=layer_scale, use_mean_pooling=False)))
        multi = sum(self.train_budgets)
        one = self.base_tokens
        grid = f'{self.frames}x{self.side}'
        return {
            'fixed': dict(model=single, loader=fixed, passes=one, label=f'FluxViT, fixed {grid} grid'),
            'flux_single': dict(model=single, loader={}, passes=one,
                                label=f'FluxViT, Flux-Single ({one})'),
            'flux_multi': dict(model={}, loader={}, passes=multi, label='FluxViT, Flux-Multi'),
            'vit_fixed': dict(model=dict(vit, **single), loader=fixed, passes=one,
                              label=f'MMAction2 ViT, fixed {grid} grid'),
            'vit_flux_multi': dict(model=vit, loader={}, passes=multi, label='MMAction2 ViT, Flux-Multi'),
        }

    def write_config(self, name: str, spec: Dict, epochs: int) -> str:
        data = self.args.data
        workers = 0 if self.quick else 2
        blending = self.base.model.data_preprocessor.get('blending')
        model = 'model = dict(cls_head=dict(num_classes=num_classes)'
        model += ', data_preprocessor=dict(blending=dict(num_classes=num_classes)))' if blending else ')'
        text = [f'_base_ = [{BASE_CONFIG!r}]', f'num_classes = {self.num_classes}',
                f'data_root = {data!r}', "video_root = data_root + '/videos'", model]
        for split in ('train', 'val', 'test'):
            text.append(f"{split}_dataloader = dict(num_workers={workers}, "
                        f"persistent_workers={bool(workers)}, dataset=dict("
                        f"ann_file=data_root + '/{split}.txt', data_prefix=dict(video=video_root)))")
        text.append(f'train_cfg = dict(max_epochs={epochs}, val_begin={epochs}, val_interval={epochs})')
        # later assignments merge into the ones above (mmengine merges dicts of a config file
        # only with its bases, so the run's overrides are written as a second file)
        path = osp.join(self.args.out, 'configs', f'{name}_base.py')
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write('\n'.join(text) + '\n')
        run_path = osp.join(self.args.out, 'configs', f'{name}.py')
        with open(run_path, 'w') as f:
            f.write(f'_base_ = [{path!r}]\nmodel = {spec["model"]!r}\n'
                    f'train_dataloader = {spec["loader"]!r}\n')
        return run_path

    def train(self, name: str, spec: Dict, seed: int, multi_epochs: int):
        epochs = max(1, round(multi_epochs * sum(self.train_budgets) / spec['passes']))
        work = osp.join(self.args.out, f'{name}_seed{seed}')
        config = self.write_config(name, spec, epochs)
        self.run([self.py, 'tools/train.py', config, '--work-dir', work, '--seed', str(seed)],
                 f'train {name} seed {seed}')
        return config, osp.join(work, f'epoch_{epochs}.pth'), epochs

    def reduced_grid(self, budget: int):
        """Plain grid reduction: fewer frames at the standard side; below one tubelet
        of frames, the largest smaller side that fits."""
        from mmflux.evaluation.token_optimization import reduction_grid
        frames = range(self.tubelet, self.frames + 1, self.tubelet)
        return reduction_grid(budget, self.side, frames, self.patch, self.tubelet,
                              shrink_side=True)

    def evaluate(self, name: str, seed: int, config: str, ckpt: str) -> Dict:
        """All budgets and methods for one trained run, in process (one model load)."""
        sys.path.insert(0, ROOT)
        import mmflux  # noqa: F401
        from mmengine.config import Config
        from mmengine.registry import init_default_scope

        from mmaction.registry import MODELS
        from mmflux.evaluation.token_optimization import TokenOptimizer
        from mmflux.utils.checkpoint_fit import load_for_inference
        cfg = Config.fromfile(config)
        init_default_scope('mmaction')
        model = MODELS.build(cfg.model)
        load_for_inference(model, ckpt, map_location='cpu')
        optimizer = TokenOptimizer(cfg, model, num_clips=1, progress=False)
        test_ann = cfg.test_dataloader['dataset']['ann_file']
        val_ann = cfg.val_dataloader['dataset']['ann_file']
        start = time.time()
        frames = [2, 4, 8, 12, 16] if not self.quick else [2, 4, 8]
        choices, _ = optimizer.search(self.budgets, frames, [42, 56, 70], val_ann, test_ann,
                                      selectors=['GroupDynamicSelector'], standard_side=self.side)
        chosen = {c.budget: c.reported for c in choices}
        rows = {}
        for budget in self.budgets:
            frames, side = self.reduced_grid(budget)
            row = dict(grid_reduction=optimizer.evaluate(
                test_ann, frames, side, None, 'GroupDynamicSelector', 'eval',
                method='grid_reduction').top1, reduced_grid=f'{frames}x{side}')
            for selector, key in (('RandomSelector', 'random'), ('GroupDynamicSelector', 'group_dynamic')):
                row[key] = optimizer.evaluate(test_ann, self.frames, self.side, budget, selector,
                                              'eval').top1
            row['to'] = chosen[budget].top1
            row['to_grid'] = f'{chosen[budget].frames}x{chosen[budget].side}'
            rows[budget] = row
        self.times['evaluate'] = self.times.get('evaluate', 0.0) + time.time() - start
        return rows

    # ------------------------------------------------------------------ main
    def main(self) -> None:
        path = osp.join(self.args.out, 'results.json')
        previous = {}
        if (self.args.resume or self.args.report_only) and osp.exists(path):
            with open(path) as f:
                previous = json.load(f)
            if previous.get('budgets') != self.budgets:
                raise SystemExit(f'{path} holds budgets {previous.get("budgets")}, this run '
                                 f'{self.budgets}: use another --out or drop --resume')
            self.commands = previous.get('commands', [])
            self.times = previous.get('stage_seconds', {})
        elif self.args.report_only:
            raise SystemExit(f'--report-only needs {path}; run the replication first')
        results = previous.get('results', {})
        elapsed = previous.get('seconds', 0.0)
        if self.args.report_only:
            return self.write_report(results, elapsed, finished=previous.get('finished', False))
        start = time.time()
        self.data()
        multi_epochs = self.args.multi_epochs or (1 if self.quick else 10)
        seeds = self.args.seeds[:1] if self.quick else self.args.seeds
        specs = self.run_specs()
        names = self.args.runs or (['fixed', 'flux_multi', 'vit_flux_multi'] if self.quick
                                   else list(specs))
        unknown = sorted(set(names) - set(specs))
        if unknown:
            raise SystemExit(f'unknown --runs {unknown}; choose from {sorted(specs)}')
        for name in names:
            # headline rows (fixed baseline and Flux-Multi) get every seed; others the first
            run_seeds = seeds if name in ('fixed', 'flux_multi') else seeds[:1]
            for seed in run_seeds:
                key = f'{name}_seed{seed}'
                if key in results:
                    print(f'[replication] {key}: kept from {path}', flush=True)
                    continue
                t0 = time.time()
                config, ckpt, epochs = self.train(name, specs[name], seed, multi_epochs)
                train_time = time.time() - t0
                rows = self.evaluate(name, seed, config, ckpt)
                results[key] = dict(run=name, seed=seed, epochs=epochs, label=specs[name]['label'],
                                    rows=rows, train_seconds=train_time,
                                    eval_seconds=time.time() - t0 - train_time)
                # saved after every run: a session cut off loses at most the run in progress
                self.write_report(results, elapsed + time.time() - start, finished=False)
        print(self.write_report(results, elapsed + time.time() - start, finished=True))

    def write_report(self, results: Dict, seconds: float, finished: bool) -> str:
        with open(osp.join(self.args.out, 'results.json'), 'w') as f:
            json.dump(dict(results=results, commands=self.commands, seconds=seconds,
                           stage_seconds=self.times, budgets=self.budgets, quick=self.quick,
                           finished=finished), f, indent=2)
        report = self.report(results, seconds, finished)
        with open(osp.join(self.args.out, 'results.md'), 'w') as f:
            f.write(report)
        if results:
            self.plot(results, osp.join(self.args.out, 'results.png'))
        return report

    METHODS = (('grid_reduction', 'grid'), ('random', 'random'), ('group_dynamic', 'group-dyn'),
               ('to', 'TO'))

    def summary(self, results: Dict) -> Dict[str, Dict]:
        """Per run and budget: the mean and half the spread over seeds of each method."""
        runs: Dict[str, Dict] = {}
        for res in results.values():
            entry = runs.setdefault(res['run'], dict(label=res['label'], seeds=[], rows={}))
            entry['seeds'].append(res['seed'])
            for budget, row in res['rows'].items():
                cell = entry['rows'].setdefault(int(budget), {})
                for key, _ in self.METHODS:
                    cell.setdefault(key, []).append(100 * row[key])
        for entry in runs.values():
            for cell in entry['rows'].values():
                for key, values in cell.items():
                    cell[key] = (sum(values) / len(values), (max(values) - min(values)) / 2)
        return runs

    def fraction(self, budget: int) -> str:
        ratio = self.base_tokens // budget
        return '1' if ratio == 1 else f'1/{ratio}'

    def report(self, results: Dict, total: float, finished: bool = True) -> str:
        state = ('quick' if self.quick else 'full') + ' run' + ('' if finished else ', in progress')
        lines = [f'# Replication results ({state}, {total / 60:.1f} min)', '',
                 f'Budgets: {self.budgets} tokens = ' + ', '.join(self.fraction(b) for b in self.budgets)
                 + f' of the baseline grid {self.frames}x{self.side} ({self.base_tokens} tokens). '
                 'Top-1 (%) on the test split; TO picks its grid on the val split. Random and '
                 'group-dynamic selection reduce the baseline grid, so at full budget they equal it (—).',
                 '', '## Summary: mean over seeds ± half the spread', '',
                 '| run | seeds | budget | ' + ' | '.join(h for _, h in self.METHODS) + ' |',
                 '|---|---|---|' + '---|' * len(self.METHODS)]
        for entry in self.summary(results).values():
            seeds = ' '.join(map(str, entry['seeds']))
            for budget in sorted(entry['rows'], reverse=True):
                cells = []
                for key, _ in self.METHODS:
                    mean, half = entry['rows'][budget][key]
                    if budget == self.base_tokens and key in ('random', 'group_dynamic'):
                        cells.append('—')
                    elif len(entry['seeds']) > 1:
                        cells.append(f'{mean:.1f} ± {half:.1f}')
                    else:
                        cells.append(f'{mean:.1f}')
                lines.append(f"| {entry['label']} | {seeds} | {budget} ({self.fraction(budget)}) | "
                             + ' | '.join(cells) + ' |')
        lines += ['', '## Every run', '',
                  '| run | seed | epochs | budget | grid reduction (grid) | random | group-dynamic | '
                  'TO (grid) |', '|---|---|---|---|---|---|---|---|']
        for res in results.values():
            for budget, row in sorted(res['rows'].items(), key=lambda kv: -int(kv[0])):
                lines.append(f"| {res['label']} | {res['seed']} | {res['epochs']} | {budget} | "
                             f"{100 * row['grid_reduction']:.1f} ({row['reduced_grid']}) | "
                             f"{100 * row['random']:.1f} | "
                             f"{100 * row['group_dynamic']:.1f} | {100 * row['to']:.1f} "
                             f"({row['to_grid']}) |")
        lines += ['', '## Wall time', '', '| run | seed | train (s) | evaluate (s) |', '|---|---|---|---|']
        for res in results.values():
            lines.append(f"| {res['label']} | {res['seed']} | {res['train_seconds']:.0f} | "
                         f"{res.get('eval_seconds', 0.0):.0f} |")
        lines += ['', 'Per stage (s): ' + ', '.join(f'{k}: {v:.0f}' for k, v in sorted(self.times.items())),
                  '', 'Commands:', '', '```'] + self.commands + ['```', '']
        return '\n'.join(lines)

    def plot(self, results: Dict, path: str) -> None:
        """Top-1 against budget, one panel per evaluation method, one line per run."""
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, len(self.METHODS), figsize=(4 * len(self.METHODS), 3.6), sharey=True)
        runs = self.summary(results)
        for (key, title), ax in zip(self.METHODS, axes):
            for entry in runs.values():
                budgets = sorted(entry['rows'])
                means = [entry['rows'][b][key][0] for b in budgets]
                spread = [entry['rows'][b][key][1] for b in budgets]
                ax.errorbar(budgets, means, yerr=spread, marker='o', capsize=3, label=entry['label'])
            ax.set_xscale('log', base=2)
            ax.set_xticks(self.budgets, [f'{b}\n({self.fraction(b)})' for b in self.budgets])
            ax.set_title(title)
            ax.set_xlabel('tokens')
            ax.grid(alpha=0.3)
        axes[0].set_ylabel('top-1 (%)')
        axes[-1].legend(fontsize=7, loc='lower right')
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


if __name__ == '__main__':
    Replication(parse_args()).main()
