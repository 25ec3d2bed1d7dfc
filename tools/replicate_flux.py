#!/usr/bin/env python
"""Replication of the paper's claims on the embedded motion dataset, with seeds and paired tests.

    python tools/replicate_flux.py                  # everything: trains, evaluates, writes the report
    python tools/replicate_flux.py --resume         # continue after an interruption (finished runs kept)
    python tools/replicate_flux.py --report-only    # the report again, from the saved predictions
    python tools/replicate_flux.py --verify         # re-evaluate the saved checkpoints: same predictions?
    python tools/replicate_flux.py --quick          # the reduced version CI runs, in minutes

1. generates the motion dataset (6 classes; 1200 train / 300 val / 1000 test videos)
   and a pretraining dataset (9 classes, rendered from another seed: other videos);
2. pretrains each backbone once (FluxViT, MMAction2's ViT) on the pretraining data
   with a plain fixed-grid recipe, as the paper fine-tunes from pretrained models.
   From scratch, the 6-class task stays at chance for a random number of hundreds
   of steps (11 of 30 five-epoch trainings never left it), which made the seed
   intervals measure that lottery instead of the training methods;
3. fine-tunes every run of :meth:`Replication.run_specs` for every seed from that
   backbone with the same recipe (same data, epochs, batch, optimizer and
   schedule; only the training method differs);
4. evaluates every run at exactly 1, 1/2, 1/4 and 1/8 of the baseline's tokens with
   grid reduction, random selection (several draws), group-dynamic selection and
   Token Optimization (grid chosen on val), saving every per-video prediction;
5. writes OUT/results.json (predictions, compute, commands) after every run, and
   from it OUT/results.md and OUT/results.png: intervals over seeds, paired tests
   (paired bootstrap over videos, McNemar) for each contrast and each of the
   paper's claims.

``docs/results.md`` is the report of the saved full run ``docs/results.json``:
    python tools/replicate_flux.py --report-only --out docs
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from mmflux.evaluation.replication_report import FRACTIONS, encode_predictions

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BASE_CONFIG = osp.join(ROOT, 'configs', 'fluxvit', 'fluxvit-tiny_synthetic.py')
FORMAT_VERSION = 3
#: the pretraining task: all nine motion classes, videos rendered from another seed
PRETRAIN_CLASSES, PRETRAIN_DATA_SEED = 9, 1


@dataclass(frozen=True)
class RunSpec:
    """One training method: overrides of the tiny recipe."""
    label: str
    model: Dict = field(default_factory=dict)
    loader: Dict = field(default_factory=dict)
    train_budgets: Optional[Tuple[int, ...]] = None  # None: the recipe's (Flux-Multi)
    align: bool = True
    flexible: bool = True  # Flux sampling of the grid
    vit: bool = False  # MMAction2's VisionTransformer wrapped by SelectiveVisionTransformer


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default=osp.join(ROOT, 'work_dirs', 'replication'))
    p.add_argument('--data', default=osp.join(ROOT, 'data', 'synthetic_motion_replication'))
    p.add_argument('--seeds', type=int, nargs='+', default=None, help='default 0 1 2 (quick: 0 1)')
    p.add_argument('--epochs', type=int, default=None, help='epochs of every run (default 4, quick 1)')
    p.add_argument('--pretrain-data', default=None, help='default: DATA + "_pretrain"')
    p.add_argument('--pretrain-epochs', type=int, default=None,
                   help='epochs of the shared pretraining (default 12, quick 1)')
    p.add_argument('--from-scratch', action='store_true',
                   help='no pretraining: every run starts from a random init')
    p.add_argument('--draws', type=int, default=3, help='random-selector draws per setting')
    p.add_argument('--runs', nargs='+', default=None, help='subset of runs (default: all)')
    p.add_argument('--jobs', type=int, default=1,
                   help='runs trained and evaluated at once, each with cores / jobs threads '
                        '(more throughput than one job with all cores: small GEMMs scale poorly '
                        'over threads and the evaluation decodes on one core)')
    p.add_argument('--quick', action='store_true', help='reduced version for CI')
    p.add_argument('--resume', action='store_true', help='keep the runs in OUT/results.json')
    p.add_argument('--report-only', action='store_true',
                   help='rewrite results.md / results.png from OUT/results.json')
    p.add_argument('--verify', action='store_true',
                   help='re-evaluate the saved checkpoints and compare every prediction')
    args = p.parse_args(argv)
    # the generated configs name their bases by path: relative paths would be read
    # relative to the config's own folder
    args.out, args.data = osp.abspath(args.out), osp.abspath(args.data)
    args.pretrain_data = osp.abspath(args.pretrain_data or args.data.rstrip('/') + '_pretrain')
    return args


class Replication:

    def __init__(self, args) -> None:
        self.args = args
        self.quick = args.quick
        self.py = sys.executable
        self.seeds = args.seeds or ([0, 1] if self.quick else [0, 1, 2])
        self.epochs = args.epochs or (1 if self.quick else 4)
        self.pretrain_epochs = 0 if args.from_scratch else (
            args.pretrain_epochs or (1 if self.quick else 12))
        self.pretrained: Dict[str, Dict] = {}  # backbone kind -> pretraining record
        self.commands: List[str] = []
        # with several jobs each gets its share of the cores (None: torch's default)
        self.threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None
        os.makedirs(args.out, exist_ok=True)
        from mmengine.config import Config
        self.base = Config.fromfile(BASE_CONFIG)  # read once; the runs override it
        backbone = self.base.model.backbone
        from mmflux.utils.token_geometry import TokenGeometry
        # the base config's sizes (no model is built here), as both backbones are given them
        self.geometry = TokenGeometry(patch_size=backbone.patch_size,
                                      tubelet_size=backbone.tubelet_size)
        self.frames, self.side = self.base.test_frames, self.base.test_side  # the standard grid
        self.base_tokens = self.geometry.num_tokens(self.frames, self.side, self.side)  # 256
        self.budgets = {f: self.base_tokens // int(f.split('/')[-1]) for f in FRACTIONS}
        self.to_frames = (2, 4, 8) if self.quick else (2, 4, 8, 12, 16)
        self.to_sides = (42, 56, 70)

    # ------------------------------------------------------------------ runs
    def run_specs(self) -> Dict[str, RunSpec]:
        full = self.base_tokens
        fixed = dict(batch_sampler=dict(frames=self.frames, sides=self.side, token_window=None))

        def single(budget):
            return dict(cls_head=dict(head_budgets=(budget, )),
                        train_cfg=dict(budgets=(budget, ), heads=(0, )))

        arch = self.base.model.backbone.arch
        geometry = self.geometry
        vit = dict(backbone=dict(
            _delete_=True, type='SelectiveVisionTransformer',
            selector=dict(type='GroupDynamicSelector', exact_count=True),
            vit=dict(type='VisionTransformer', img_size=self.side, patch_size=geometry.patch_size,
                     num_frames=self.frames, tubelet_size=geometry.tubelet_size,
                     embed_dims=arch['embed_dims'], depth=arch['depth'], num_heads=arch['num_heads'],
                     # the recipe's initial residual scale (MMAction2's ViT calls it init_values):
                     # without it the from-scratch ViT stayed at chance in an earlier run
                     init_values=self.base.model.backbone.layer_scale_init_value,
                     use_mean_pooling=False)))
        grid = f'{self.frames}x{self.side}'
        specs = dict(
            fixed=RunSpec(f'fixed {grid}', single(full), fixed, (full, ), False, False),
            flux_single=RunSpec(f'Flux-Single ({full})', single(full), {}, (full, ), False),
            flux_multi=RunSpec('Flux-Multi'),
            flux_multi_no_align=RunSpec('Flux-Multi w/o align',
                                        dict(train_cfg=dict(align_weight=0.0)), align=False),
            multi_fixed=RunSpec(f'multi-budget, fixed {grid}', {}, fixed, flexible=False),
        )
        for fraction in FRACTIONS[1:]:
            b = self.budgets[fraction]
            specs[f'direct_{b}'] = RunSpec(f'direct {fraction} (fixed {grid} → {b})', single(b), fixed,
                                           (b, ), False, False)
        specs['vit_fixed'] = RunSpec(f'ViT, fixed {grid}', dict(vit, **single(full)), fixed, (full, ),
                                     False, False, vit=True)
        specs['vit_flux_multi'] = RunSpec('ViT, Flux-Multi', vit, vit=True)
        return specs

    def train_budgets(self, spec: RunSpec) -> Tuple[int, ...]:
        return spec.train_budgets or tuple(self.base.model.train_cfg.budgets)

    def write_config(self, name: str, spec: RunSpec, pretrain: bool = False) -> str:
        """The run's config: the tiny recipe with the run's overrides. Fine-tuning runs
        start from the pretrained backbone of their kind; ``pretrain`` writes the
        pretraining config itself (other data and classes, validated at its end)."""
        data = self.args.pretrain_data if pretrain else self.args.data
        epochs = self.pretrain_epochs if pretrain else self.epochs
        num_classes = self.pretrain_classes if pretrain else self.num_classes
        workers = 0 if self.quick else 2
        blending = self.base.model.data_preprocessor.get('blending')
        model = ('model = dict(cls_head=dict(num_classes=num_classes), '
                 'backbone=dict(selector=dict(exact_count=True))')  # budgets kept exactly
        model += ', data_preprocessor=dict(blending=dict(num_classes=num_classes)))' if blending else ')'
        text = [f'_base_ = [{BASE_CONFIG!r}]', f'num_classes = {num_classes}',
                f'data_root = {data!r}', "video_root = data_root + '/videos'", model]
        for split in ('train', 'val', 'test'):
            text.append(f"{split}_dataloader = dict(num_workers={workers}, "
                        f"persistent_workers={bool(workers)}, dataset=dict("
                        f"ann_file=data_root + '/{split}.txt', data_prefix=dict(video=video_root)))")
        # no validation during training (every run is evaluated afterwards); the
        # schedules follow max_epochs (CosineToEndLR)
        text.append(f'train_cfg = dict(max_epochs={epochs}, val_begin={epochs + 1})')
        if pretrain:  # one validation, at the end: did the pretraining learn?
            text[-1] = f'train_cfg = dict(max_epochs={epochs}, val_begin={epochs}, val_interval={epochs})'
        overrides = deepcopy(spec.model)
        if not pretrain and self.pretrained:
            ckpt = self.pretrained['vit' if spec.vit else 'fluxvit']['checkpoint']
            overrides.setdefault('backbone', {})['init_cfg'] = dict(
                type='Pretrained', checkpoint=osp.normpath(osp.join(ROOT, ckpt)), prefix='backbone.')
        text.append(f'default_hooks = dict(checkpoint=dict(interval={epochs}, save_best=None))')
        # later assignments merge into the ones above (mmengine merges dicts of a config file
        # only with its bases, so the run's overrides are written as a second file)
        path = osp.join(self.args.out, 'configs', f'{name}_base.py')
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write('\n'.join(text) + '\n')
        run_path = osp.join(self.args.out, 'configs', f'{name}.py')
        with open(run_path, 'w') as f:
            f.write(f'_base_ = [{path!r}]\nmodel = {overrides!r}\ntrain_dataloader = {spec.loader!r}\n')
        return run_path

    def command(self, cmd: List[str], tag: str) -> str:
        printable = ' '.join(cmd).replace(ROOT + '/', '')
        if printable not in self.commands:
            self.commands.append(printable)
        print(f'[replication] {tag}: {printable}', flush=True)
        env = dict(os.environ)
        if self.threads:
            env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(self.threads)
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
            raise SystemExit(f'{tag} failed')
        return result.stdout

    def data(self) -> None:
        sizes = (['--num-train', '48', '--num-val', '24', '--num-test', '24', '--num-classes', '4']
                 if self.quick else
                 ['--num-train', '1200', '--num-val', '300', '--num-test', '1000', '--num-classes', '6'])
        self.command([self.py, 'tools/generate_synthetic_data.py', '--out', self.args.data,
                      '--no-progress'] + sizes, 'data')
        if self.pretrain_epochs:
            self.pretrain_classes = PRETRAIN_CLASSES
            sizes = ['--num-train', '48' if self.quick else '1200', '--num-val', '24' if self.quick else '180',
                     '--num-test', '9', '--num-classes', str(PRETRAIN_CLASSES),
                     '--seed', str(PRETRAIN_DATA_SEED)]
            self.command([self.py, 'tools/generate_synthetic_data.py', '--out', self.args.pretrain_data,
                          '--no-progress'] + sizes, 'pretraining data')
        with open(osp.join(self.args.data, 'meta.json')) as f:
            self.num_classes = len(json.load(f)['classes'])
        with open(osp.join(self.args.data, 'test.txt')) as f:
            rows = [line.split() for line in f if line.strip()]
        self.videos = [r[0] for r in rows]
        self.labels = [int(r[1]) for r in rows]

    def pretrain(self, kind: str, spec: RunSpec) -> Dict:
        """Pretrain one backbone (``kind``: fluxvit or vit) on the pretraining task and
        check that it learned: its fine-tunings are worthless otherwise."""
        name = f'pretrain_{kind}'
        config, ckpt, compute = self.train(name, spec, 0, pretrain=True)
        from mmflux.evaluation.token_optimization import Setting
        optimizer = self.token_optimizer(config, ckpt)
        result, = optimizer.evaluate_settings(
            optimizer.cfg.val_dataloader['dataset']['ann_file'],
            [Setting(self.frames, self.side, None, 'GroupDynamicSelector', 'grid')], 'val')
        chance = 1 / self.pretrain_classes
        record = dict(kind=kind, config=osp.relpath(config, ROOT), checkpoint=osp.relpath(ckpt, ROOT),
                      epochs=self.pretrain_epochs, classes=self.pretrain_classes,
                      data_seed=PRETRAIN_DATA_SEED, val_top1=round(result.top1, 6), compute=compute)
        print(f'[replication] {name}: val top-1 {100 * result.top1:.1f}% (chance {100 * chance:.1f}%)',
              flush=True)
        if not self.quick and result.top1 < chance + 0.10:
            raise SystemExit(f'{name} did not learn (val top-1 {100 * result.top1:.1f}%, chance '
                             f'{100 * chance:.1f}%): fine-tuning from it would measure nothing; raise '
                             f'--pretrain-epochs (now {self.pretrain_epochs})')
        return record

    def train(self, name: str, spec: RunSpec, seed: int, pretrain: bool = False) -> Tuple[str, str, Dict]:
        work = osp.join(self.args.out, 'runs', f'{name}_seed{seed}')
        config = self.write_config(name, spec, pretrain)
        start = time.time()
        self.command([self.py, 'tools/train.py', config, '--work-dir', work, '--seed', str(seed)],
                     f'train {name} seed {seed}')
        epochs = self.pretrain_epochs if pretrain else self.epochs
        ckpt = osp.join(work, f'epoch_{epochs}.pth')
        import torch
        meta = torch.load(ckpt, map_location='cpu', weights_only=False).get('meta', {})
        steps = int(meta.get('iter', 0))
        batch = self.base.train_dataloader.batch_size
        compute = dict(epochs=epochs, steps=steps, batch_size=batch,
                       tokens_per_clip=sum(self.train_budgets(spec)),
                       train_seconds=round(time.time() - start, 1))
        # an upper bound: a Flux grid below a budget keeps all its (fewer) tokens
        compute['token_passes'] = steps * batch * compute['tokens_per_clip']
        return config, ckpt, compute

    # ------------------------------------------------------------ evaluation
    def settings(self, choices) -> Dict[str, object]:
        """Every test setting of one run, by cell key ``fraction:method[:draw]``."""
        from mmflux.evaluation.token_optimization import Setting, reduction_grid
        gd, rnd = 'GroupDynamicSelector', 'RandomSelector'
        tubelet = self.geometry.tubelet_size
        frames = range(tubelet, self.frames + 1, tubelet)
        out = {}
        for fraction, budget in self.budgets.items():
            t, s = reduction_grid(budget, self.side, self.geometry, frames, shrink_side=True)
            out[f'{fraction}:grid'] = Setting(t, s, None, gd, 'grid_reduction')
            if budget < self.base_tokens:  # at full budget the selectors keep everything
                out[f'{fraction}:group_dynamic'] = Setting(self.frames, self.side, budget, gd,
                                                           'group_dynamic')
                for draw in range(self.args.draws):
                    out[f'{fraction}:random:{draw}'] = Setting(self.frames, self.side, budget, rnd,
                                                               'random', seed=draw)
        for fraction, budget in self.budgets.items():
            chosen = choices[budget].chosen
            out[f'{fraction}:to'] = Setting(chosen.frames, chosen.side, budget, gd, 'to')
        return out

    @staticmethod
    def token_optimizer(config: str, ckpt: str):
        """The trained model of a run, in process, behind the decode-once evaluator."""
        import mmflux  # noqa: F401  (registers the components)
        from mmengine.config import Config
        from mmengine.registry import init_default_scope

        from mmaction.registry import MODELS
        from mmflux.evaluation.grid_config import set_test_grid
        from mmflux.evaluation.token_optimization import TokenOptimizer
        from mmflux.utils.checkpoint_fit import load_for_inference
        cfg = Config.fromfile(config)
        set_test_grid(cfg, num_clips=1, crop='CenterCrop')  # one view per video
        init_default_scope('mmaction')
        model = MODELS.build(cfg.model)
        load_for_inference(model, ckpt, map_location='cpu')
        return TokenOptimizer(cfg, model, num_clips=1, progress=False, batch_size=25)

    def evaluate(self, config: str, ckpt: str) -> Dict[str, Dict]:
        """Every cell of one trained run, in process: TO chooses on val, then one
        decode-once pass over the test split for every setting."""
        optimizer = self.token_optimizer(config, ckpt)
        cfg = optimizer.cfg
        val_ann = cfg.val_dataloader['dataset']['ann_file']
        test_ann = cfg.test_dataloader['dataset']['ann_file']
        choices = {c.budget: c for c in optimizer.choose(
            list(self.budgets.values()), self.to_frames, self.to_sides, val_ann)}
        settings = self.settings(choices)
        results = optimizer.evaluate_settings(test_ann, list(settings.values()), 'test')
        preds: Dict[object, Dict[str, int]] = {}
        for row in optimizer.predictions:
            if row['split'] == 'test':
                key = (row['frames'], row['side'], row['budget'], row['selector'], row['method'],
                       row['seed'])
                preds.setdefault(key, {})[row['video']] = row['pred']
        names = [osp.basename(v) for v in self.videos]
        cells = {}
        for (cell, setting), result in zip(settings.items(), results):
            per_video = preds.get(tuple(setting), {})
            cells[cell] = dict(grid=f'{setting.frames}x{setting.side}', kept=int(result.kept_tokens),
                               pred=encode_predictions([per_video.get(n) for n in names]))
            if cell.endswith(':to'):
                cells[cell]['val_top1'] = round(choices[setting.budget].chosen.top1, 6)
        return cells

    # ------------------------------------------------------------------ main
    def path(self) -> str:
        return osp.join(self.args.out, 'results.json')

    def load(self) -> Dict:
        with open(self.path()) as f:
            saved = json.load(f)
        if saved.get('version') != FORMAT_VERSION:
            raise SystemExit(f'{self.path()} was written by an older replicate_flux.py (format '
                             f'{saved.get("version")}, this one reads {FORMAT_VERSION}); use another '
                             '--out or run without --resume')
        return saved

    def main(self) -> None:
        args = self.args
        if args.report_only or args.verify:
            if not osp.exists(self.path()):
                raise SystemExit(f'--report-only / --verify need {self.path()}; run the replication first')
            saved = self.load()
            if args.verify:
                return self.verify(saved)
            print(self.write_report(saved, write_json=False))
            return
        saved = self.load() if args.resume and osp.exists(self.path()) else {}
        self.commands = saved.get('commands', [])
        runs = saved.get('runs', {})
        elapsed = saved.get('seconds', 0.0)
        start = time.time()
        self.data()
        if saved and (saved['setup']['videos'] != self.videos or saved['setup']['epochs'] != self.epochs
                      or saved['setup']['pretrain_epochs'] != self.pretrain_epochs):
            raise SystemExit(f'{self.path()} holds another setup (test videos, epochs or pretraining '
                             'epochs differ); use another --out or drop --resume')
        specs = self.run_specs()
        names = args.runs or (['fixed', 'flux_multi'] if self.quick else list(specs))
        unknown = sorted(set(names) - set(specs))
        if unknown:
            raise SystemExit(f'unknown --runs {unknown}; choose from {sorted(specs)}')
        from mmflux.utils.cpu_info import describe_cpu
        setup = dict(videos=self.videos, labels=self.labels, epochs=self.epochs, seeds=self.seeds,
                     budgets=self.budgets, base_grid=f'{self.frames}x{self.side}',
                     to_frames=list(self.to_frames), to_sides=list(self.to_sides), draws=args.draws,
                     num_classes=self.num_classes, quick=self.quick,
                     runs={n: dict(label=specs[n].label, align=specs[n].align,
                                   flexible=specs[n].flexible, vit=specs[n].vit,
                                   train_budgets=list(self.train_budgets(specs[n]))) for n in names})
        setup['pretrain_epochs'] = self.pretrain_epochs
        self.pretrained = saved.get('pretrained', {})
        state = dict(version=FORMAT_VERSION, setup=setup, runs=runs, commands=self.commands,
                     cpu=describe_cpu(), seconds=elapsed, finished=False, pretrained=self.pretrained)
        kinds = {'vit' if specs[n].vit else 'fluxvit' for n in names} if self.pretrain_epochs else ()
        for kind in sorted(kinds):  # once per backbone, shared by every run and seed
            if kind in self.pretrained:
                print(f'[replication] pretrain_{kind}: kept from {self.path()}', flush=True)
                continue
            self.pretrained[kind] = self.pretrain(kind, specs['vit_fixed' if kind == 'vit' else 'fixed'])
            state['seconds'] = elapsed + time.time() - start
            self.write_report(state)
        todo = []
        for seed in self.seeds:  # seed-major: an interrupted run has whole seeds of every row
            for name in names:
                key = f'{name}/seed{seed}'
                if key in runs:
                    print(f'[replication] {key}: kept from {self.path()}', flush=True)
                else:
                    todo.append((name, seed))

        def finished(key, record, commands):
            runs[key] = record
            self.commands.extend(c for c in commands if c not in self.commands)
            state['seconds'] = elapsed + time.time() - start
            # saved after every run: an interruption loses at most the runs in progress
            self.write_report(state)

        if args.jobs > 1 and len(todo) > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed
            with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context('spawn')) as pool:
                futures = [pool.submit(run_in_worker, args, self.worker_state(), name, seed)
                           for name, seed in todo]
                for future in as_completed(futures):
                    finished(*future.result())
        else:
            for name, seed in todo:
                finished(*self.run_one(name, seed))
        state.update(seconds=elapsed + time.time() - start, finished=True)
        print(self.write_report(state))

    def run_one(self, name: str, seed: int) -> Tuple[str, Dict, List[str]]:
        """Train and evaluate one run: its key, its record and the commands it ran."""
        config, ckpt, compute = self.train(name, self.run_specs()[name], seed)
        t0 = time.time()
        cells = self.evaluate(config, ckpt)
        compute['eval_seconds'] = round(time.time() - t0, 1)
        record = dict(run=name, seed=seed, config=osp.relpath(config, ROOT),
                      checkpoint=osp.relpath(ckpt, ROOT), compute=compute, cells=cells)
        return f'{name}/seed{seed}', record, self.commands

    def worker_state(self) -> Dict:
        """What a job process needs of this one (read from the data and the pretraining)."""
        return dict(num_classes=self.num_classes, videos=self.videos, labels=self.labels,
                    pretrained=self.pretrained, pretrain_classes=getattr(self, 'pretrain_classes', None))

    def verify(self, saved: Dict) -> None:
        """Evaluate every saved checkpoint again; any prediction that differs is an error."""
        self.budgets = saved['setup']['budgets']
        self.videos = saved['setup']['videos']
        self.args.draws = saved['setup']['draws']
        self.to_frames, self.to_sides = saved['setup']['to_frames'], saved['setup']['to_sides']
        differ = []
        for key, run in saved['runs'].items():
            cells = self.evaluate(osp.join(ROOT, run['config']), osp.join(ROOT, run['checkpoint']))
            for cell, value in run['cells'].items():
                if cells.get(cell, {}).get('pred') != value['pred']:
                    differ.append(f'{key} {cell}')
            print(f'[replication] verified {key}: {len(run["cells"])} settings', flush=True)
        if differ:
            raise SystemExit(f'{len(differ)} settings predict differently from {self.path()}: '
                             + ', '.join(differ[:10]))
        print(f'[replication] every prediction of {len(saved["runs"])} runs reproduced')

    def write_report(self, state: Dict, write_json: bool = True) -> str:
        from mmflux.evaluation.replication_report import ReplicationReport
        if write_json:
            with open(self.path(), 'w') as f:
                json.dump(state, f, indent=1)
        report = ReplicationReport(state)
        text = report.markdown()
        with open(osp.join(self.args.out, 'results.md'), 'w') as f:
            f.write(text)
        if state['runs']:
            report.plot(osp.join(self.args.out, 'results.png'))
        return text


def run_in_worker(args, state: Dict, name: str, seed: int):
    """One run in a job process (``--jobs``): torch in this process gets its share of cores."""
    rep = Replication(args)
    for key, value in state.items():
        setattr(rep, key, value)
    if rep.threads:
        import torch
        torch.set_num_threads(rep.threads)
    return rep.run_one(name, seed)


if __name__ == '__main__':
    Replication(parse_args()).main()
