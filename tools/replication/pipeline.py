"""The replication's steps, small functions over one :class:`State`.

Why: the steps (data, pretraining per seed and arm, fine-tuning, evaluation,
report) share only what :class:`State` holds, and each writes its result to disk
as soon as it has one, so an interrupted replication resumes where it stopped,
in this session or a later one:

- ``OUT`` (small, committed): ``setup.json`` (the design, pretraining records,
  commands, CPU) and one ``runs/<run>_seed<k>.json`` per finished run with every
  per-video prediction; the report is written from these alone;
- ``WORK`` (large, never committed): datasets, configs, checkpoints and logs.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .design import FRACTIONS, ROOT, Design, RunSpec

FORMAT_VERSION = 4
ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz'  # one character per predicted class
FAILED = '-'  # a video that could not be decoded


def encode_predictions(preds) -> str:
    """Per-video predicted classes as one string (compact in JSON; None: failed)."""
    return ''.join(FAILED if p is None else ALPHABET[p] for p in preds)


@dataclass
class State:
    """Everything the steps share: where things go, what the data is, what is done."""
    out: str
    work: str
    design: Design
    seeds: Tuple[int, ...]
    runs: List[str]
    draws: int = 3
    jobs: int = 1
    setup: Dict = field(default_factory=dict)
    pretrained: Dict[str, Dict] = field(default_factory=dict)  # '<arm>/seed<k>' -> record
    results: Dict[str, Dict] = field(default_factory=dict)  # '<run>/seed<k>' -> record
    commands: List[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def threads(self) -> Optional[int]:
        """With several jobs each gets its share of the cores (None: torch's default)."""
        return max(1, (os.cpu_count() or 1) // self.jobs) if self.jobs > 1 else None

    def data_root(self, task: str) -> str:
        return osp.join(self.work, 'data', task)

    def run_dir(self, key: str) -> str:
        return osp.join(self.work, 'runs', key.replace('/', '_'))

    def result_path(self, key: str) -> str:
        return osp.join(self.out, 'runs', key.replace('/', '_') + '.json')


# ------------------------------------------------------------------ commands
def run_command(state: State, cmd: List[str], tag: str) -> str:
    printable = ' '.join(cmd).replace(sys.executable, 'python').replace(ROOT + '/', '').replace(state.work, 'WORK')
    if printable not in state.commands:
        state.commands.append(printable)
    print(f'[replication] {tag}: {printable}', flush=True)
    env = dict(os.environ)
    if state.threads:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(state.threads)
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f'{tag} failed (exit {result.returncode}): {printable}')
    return result.stdout


# ------------------------------------------------------------------ data
def prepare_data(state: State) -> None:
    """Generate both datasets (kept when already there) and read the test labels."""
    for task in ('finetune', 'pretrain'):
        size = state.design.dataset(task)
        run_command(state, [sys.executable, 'tools/generate_synthetic_data.py', '--out',
                            state.data_root(task), '--no-progress'] + size.generator_args(),
                    f'{task} data')
    root = state.data_root('finetune')
    with open(osp.join(root, 'test.txt')) as f:
        rows = [line.split() for line in f if line.strip()]
    state.setup.update(videos=[osp.basename(r[0]) for r in rows], labels=[int(r[1]) for r in rows],
                       num_classes=state.design.dataset('finetune').classes)


def describe_setup(state: State, specs: Dict[str, RunSpec]) -> Dict:
    d = state.design
    runs = {n: dict(specs[n].as_dict(d.train_budgets(specs[n])), epochs=d.epochs(specs[n]))
            for n in state.runs}
    return dict(state.setup, version=FORMAT_VERSION, quick=d.quick, seeds=list(state.seeds),
                epochs=d.schedule.epochs, pretrain_epochs=d.schedule.pretrain_epochs,
                val_interval=d.schedule.val_interval, budgets=d.budgets,
                base_grid=f'{d.frames}x{d.side}', to_frames=list(d.to_frames),
                to_sides=list(d.to_sides), draws=state.draws, runs=runs,
                datasets={t: d.dataset(t)._asdict() for t in ('finetune', 'pretrain')})


#: what must match for saved runs to be kept
SAME_SETUP = ('version', 'videos', 'labels', 'epochs', 'pretrain_epochs', 'budgets', 'draws',
              'to_frames', 'to_sides', 'datasets')


# ------------------------------------------------------------------ persistence
def load_saved(out: str) -> Tuple[Dict, Dict[str, Dict]]:
    """``setup.json`` and every saved run of ``out`` ({} and {} when there is none)."""
    path = osp.join(out, 'setup.json')
    if not osp.exists(path):
        return {}, {}
    with open(path) as f:
        saved = json.load(f)
    if saved.get('setup', {}).get('version') != FORMAT_VERSION:
        raise SystemExit(f'{path} was written by another replicate_flux.py (format '
                         f'{saved.get("setup", {}).get("version")}, this one reads {FORMAT_VERSION}); '
                         'use another --out')
    results = {}
    run_dir = osp.join(out, 'runs')
    for name in sorted(os.listdir(run_dir)) if osp.isdir(run_dir) else ():
        with open(osp.join(run_dir, name)) as f:
            record = json.load(f)
        results[f"{record['run']}/seed{record['seed']}"] = record
    return saved, results


def save(state: State, key: Optional[str] = None) -> None:
    """Write setup.json, and the run ``key`` when given (after every step)."""
    os.makedirs(osp.join(state.out, 'runs'), exist_ok=True)
    if key is not None:
        with open(state.result_path(key), 'w') as f:
            json.dump(state.results[key], f, indent=1)
    from mmflux.utils.cpu_info import describe_cpu
    with open(osp.join(state.out, 'setup.json'), 'w') as f:
        json.dump(dict(setup=state.setup, pretrained=state.pretrained, commands=state.commands,
                       cpu=describe_cpu(), seconds=round(state.seconds, 1)), f, indent=1)


def report_state(state: State) -> Dict:
    """What the report reads: the saved state as one dict."""
    saved, results = load_saved(state.out)
    return dict(saved, runs=results)


# ------------------------------------------------------------------ training
def read_training_log(work: str) -> Tuple[int, List[Tuple[int, float]]]:
    """Steps trained and the validation curve [(epoch, top-1)] of one work dir, from
    mmengine's scalar log (no checkpoint is loaded for this)."""
    paths = sorted(p for p in (osp.join(work, d, 'vis_data', 'scalars.json')
                               for d in os.listdir(work)) if osp.exists(p))
    steps, curve = 0, {}
    for path in paths:  # a resumed training writes a second timestamped folder
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                if 'acc/top1' in row:
                    curve[int(row['step'])] = round(float(row['acc/top1']), 6)
                elif 'loss' in row:
                    steps = max(steps, int(row['step']))
    return steps, sorted(curve.items())


def train(state: State, key: str, spec: RunSpec, seed: int, pretrain: bool = False,
          init: Optional[str] = None) -> Dict:
    """One training (resumed when its work dir has a checkpoint): its record."""
    d = state.design
    task = 'pretrain' if pretrain else 'finetune'
    cfg = d.config(spec, state.data_root(task), d.dataset(task).classes, pretrain=pretrain,
                   init_checkpoint=init)
    work = state.run_dir(key)
    os.makedirs(work, exist_ok=True)
    config = osp.join(work, 'config.py')
    cfg.dump(config)
    epochs = cfg.train_cfg.max_epochs
    ckpt = osp.join(work, f'epoch_{epochs}.pth')
    timer = osp.join(work, 'train_seconds.txt')  # wall time over every session that trained it
    if not osp.exists(ckpt):
        cmd = [sys.executable, 'tools/train.py', config, '--work-dir', work, '--seed', str(seed)]
        if osp.exists(osp.join(work, 'last_checkpoint')):
            cmd.append('--resume')  # an interrupted training continues
        start = time.time()
        run_command(state, cmd, f'train {key}')
        before = float(open(timer).read()) if osp.exists(timer) else 0.0
        with open(timer, 'w') as f:
            f.write(f'{before + time.time() - start:.1f}')
    seconds = float(open(timer).read()) if osp.exists(timer) else 0.0
    steps, curve = read_training_log(work)
    batch = cfg.train_dataloader.batch_size
    compute = dict(epochs=epochs, steps=steps, batch_size=batch,
                   tokens_per_clip=sum(d.train_budgets(spec)), train_seconds=seconds)
    # an upper bound: a Flux grid below a budget keeps all its (fewer) tokens
    compute['token_passes'] = steps * batch * compute['tokens_per_clip']
    return dict(config=osp.relpath(config, state.work), checkpoint=osp.relpath(ckpt, state.work),
                compute=compute, val_curve=curve)


def pretrain(state: State, arm: str, seed: int) -> Dict:
    """Pretrain one arm for one seed on the pretraining task; refuse one that did not
    learn (its fine-tunings would measure nothing)."""
    key = f'{arm}/seed{seed}'
    record = train(state, f'pretrain_{arm}/seed{seed}', state.design.pretrain_arms()[arm], seed,
                   pretrain=True)
    classes = state.design.dataset('pretrain').classes
    top1 = record['val_curve'][-1][1] if record['val_curve'] else 0.0  # a fraction
    record.update(arm=arm, seed=seed, classes=classes, val_top1=top1)
    chance = 1 / classes
    print(f'[replication] pretrain {key}: val top-1 {100 * top1:.1f}% (chance {100 * chance:.1f}%)',
          flush=True)
    if not state.design.quick and top1 < chance + 0.10:
        raise SystemExit(f'pretraining {key} did not learn (val top-1 {100 * top1:.1f}%, chance '
                         f'{100 * chance:.1f}%): fine-tuning from it would measure nothing; raise the '
                         'pretraining epochs in tools/replication/design.py')
    return record


def pretrain_arm_of(spec: RunSpec) -> str:
    return 'vit' if spec.vit else spec.pretrain


# ------------------------------------------------------------------ evaluation
def settings(state: State, choices, grid_choices) -> Dict[str, object]:
    """Every test setting of one run, by cell key ``fraction:method[:draw]``."""
    from mmflux.evaluation.token_optimization import Setting
    d = state.design
    gd, rnd = 'GroupDynamicSelector', 'RandomSelector'
    out = {}
    for fraction, budget in d.budgets.items():
        t, s = grid_choices[budget]
        out[f'{fraction}:grid'] = Setting(t, s, None, gd, 'grid_reduction')
        if budget < d.base_tokens:  # at full budget the selectors keep everything
            out[f'{fraction}:group_dynamic'] = Setting(d.frames, d.side, budget, gd, 'group_dynamic')
            for draw in range(state.draws):
                out[f'{fraction}:random:{draw}'] = Setting(d.frames, d.side, budget, rnd, 'random',
                                                           seed=draw)
        chosen = choices[budget].chosen
        out[f'{fraction}:to'] = Setting(chosen.frames, chosen.side, budget, gd, 'to')
    return out


def reduction_candidates(design: Design, budget: int) -> List[Tuple[int, int]]:
    """Grid reduction's candidates at ``budget``: for every frame count, the largest
    side whose grid fits, kept when it uses more than half the budget (fewer frames
    *and* a smaller side; the best on val is reported)."""
    if budget >= design.base_tokens:
        return [(design.frames, design.side)]
    out = []
    for frames in range(design.tubelet, 2 * design.frames + 1, design.tubelet):
        fits = [s for s in range(design.patch, design.side + 1, design.patch)
                if design.num_tokens(frames, s) <= budget]
        if fits and 2 * design.num_tokens(frames, fits[-1]) > budget:
            out.append((frames, fits[-1]))
    return out


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
    load_for_inference(model, ckpt, map_location='cpu')  # the project's checkpoint policy
    return TokenOptimizer(cfg, model, num_clips=1, progress=False, batch_size=25)


def evaluate(state: State, config: str, ckpt: str) -> Dict[str, Dict]:
    """Every cell of one trained run: TO and grid reduction choose their grids on
    val, then one decode-once pass over the test split for every setting."""
    from mmflux.evaluation.token_optimization import Setting
    d = state.design
    optimizer = token_optimizer(config, ckpt)
    val_ann = optimizer.cfg.val_dataloader['dataset']['ann_file']
    test_ann = optimizer.cfg.test_dataloader['dataset']['ann_file']
    choices = {c.budget: c for c in optimizer.choose(list(d.budgets.values()), d.to_frames,
                                                     d.to_sides, val_ann)}
    candidates = {b: reduction_candidates(d, b) for b in d.budgets.values()}
    flat = [(b, g) for b in candidates for g in candidates[b]]
    val = optimizer.evaluate_settings(
        val_ann, [Setting(t, s, None, 'GroupDynamicSelector', 'grid_reduction') for _, (t, s) in flat],
        'val')
    grid_choices, grid_val = {}, {}
    for (budget, grid), result in zip(flat, val):  # best on val; ties: the smaller grid
        if budget not in grid_val or (result.top1, -result.grid_tokens) > grid_val[budget]:
            grid_choices[budget], grid_val[budget] = grid, (result.top1, -result.grid_tokens)
    cells_settings = settings(state, choices, grid_choices)
    optimizer.predictions.clear()
    results = optimizer.evaluate_settings(test_ann, list(cells_settings.values()), 'test')
    preds: Dict[object, Dict[str, int]] = {}
    for row in optimizer.predictions:
        if row['split'] == 'test':
            key = (row['frames'], row['side'], row['budget'], row['selector'], row['method'],
                   row['seed'])
            preds.setdefault(key, {})[row['video']] = row['pred']
    cells = {}
    for (cell, setting), result in zip(cells_settings.items(), results):
        per_video = preds.get(tuple(setting), {})
        cells[cell] = dict(grid=f'{setting.frames}x{setting.side}', kept=int(result.kept_tokens),
                           pred=encode_predictions([per_video.get(n) for n in state.setup['videos']]))
        budget = d.budgets[cell.split(':')[0]]
        if cell.endswith(':to'):
            cells[cell]['val_top1'] = round(choices[budget].chosen.top1, 6)
        if cell.endswith(':grid'):
            cells[cell]['val_top1'] = round(grid_val[budget][0], 6)
    return cells


def run_one(state: State, name: str, seed: int) -> Tuple[str, Dict, List[str]]:
    """Train and evaluate one run: its key, its record and the commands it ran."""
    spec = state.design.runs()[name]
    pre = state.pretrained.get(f'{pretrain_arm_of(spec)}/seed{seed}')
    init = osp.join(state.work, pre['checkpoint']) if pre else None
    key = f'{name}/seed{seed}'
    record = dict(run=name, seed=seed, pretrained=pre and f"{pre['arm']}/seed{seed}",
                  **train(state, key, spec, seed, init=init))
    t0 = time.time()
    record['cells'] = evaluate(state, osp.join(state.work, record['config']),
                               osp.join(state.work, record['checkpoint']))
    record['compute']['eval_seconds'] = round(time.time() - t0, 1)
    return key, record, state.commands


def _share_cores(state: State) -> None:
    """In a job process (``--jobs``), torch gets its share of the cores."""
    if state.threads:
        import torch
        torch.set_num_threads(state.threads)


def _in_worker(state: State, name: str, seed: int) -> Tuple[Dict, List[str]]:
    _share_cores(state)
    _, record, commands = run_one(state, name, seed)
    return record, commands


def _pretrain_in_worker(state: State, arm: str, seed: int) -> Tuple[Dict, List[str]]:
    _share_cores(state)
    return pretrain(state, arm, seed), state.commands


# ------------------------------------------------------------------ the whole
def todo(state: State) -> List[Tuple[int, List[str], List[Tuple[str, int]]]]:
    """Per seed (seed-major: an interrupted replication has whole seeds): the
    pretrainings and the runs still missing, core runs first."""
    specs = state.design.runs()
    order = sorted(state.runs, key=lambda n: not specs[n].core)
    plan = []
    for seed in state.seeds:
        arms = sorted({pretrain_arm_of(specs[n]) for n in state.runs})
        arms = [a for a in arms if f'{a}/seed{seed}' not in state.pretrained]
        runs = [(n, seed) for n in order if f'{n}/seed{seed}' not in state.results]
        if arms or runs:
            plan.append((seed, arms, runs))
    return plan


def run_all(state: State) -> None:
    start, elapsed = time.time(), state.seconds

    def finished(key: Optional[str] = None) -> None:
        state.seconds = elapsed + time.time() - start
        save(state, key)  # after every step: an interruption loses only the steps in progress

    for key in state.results:
        print(f'[replication] {key}: kept from {state.out}', flush=True)
    for seed, arms, runs in todo(state):
        for (arm, _), (record, commands) in _map(state, _pretrain_in_worker, [(a, seed) for a in arms]):
            state.pretrained[f'{arm}/seed{seed}'] = record
            state.commands.extend(c for c in commands if c not in state.commands)
            finished()
        for (name, _), (record, commands) in _map(state, _in_worker, runs):
            key = f'{name}/seed{seed}'
            state.results[key] = record
            state.commands.extend(c for c in commands if c not in state.commands)
            finished(key)
    finished()


def _map(state: State, fn, items):
    """``(item, fn(state, *item))`` as each finishes: ``--jobs`` processes at once."""
    if state.jobs > 1 and len(items) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed
        with ProcessPoolExecutor(state.jobs, mp_context=mp.get_context('spawn')) as pool:
            futures = {pool.submit(fn, state, *item): item for item in items}
            for future in as_completed(futures):
                yield futures[future], future.result()
    else:
        for item in items:
            yield item, fn(state, *item)


def verify(state: State) -> None:
    """Evaluate every saved checkpoint again; any prediction that differs is an error."""
    differ = []
    for key, run in state.results.items():
        cells = evaluate(state, osp.join(state.work, run['config']),
                         osp.join(state.work, run['checkpoint']))
        for cell, value in run['cells'].items():
            if cells.get(cell, {}).get('pred') != value['pred']:
                differ.append(f'{key} {cell}')
        print(f'[replication] verified {key}: {len(run["cells"])} settings', flush=True)
    if differ:
        raise SystemExit(f'{len(differ)} settings predict differently from {state.out}: '
                         + ', '.join(differ[:10]))
    print(f'[replication] every prediction of {len(state.results)} runs reproduced')


__all__ = ['FRACTIONS', 'State', 'prepare_data', 'run_all', 'verify', 'load_saved', 'save',
           'report_state', 'encode_predictions']
