"""Inference speed and memory of FluxViT vs MMAction2's VisionTransformer, one run.

Usage (from the repository root)::

    python tools/benchmark.py [--models s b] [--budgets 2048 1024] [--batch-size 2]
                              [--device cpu|cuda] [--dtype fp32 bf16]
                              [--warmup 1] [--iters 3] [--min-run-time 0.2] [--threads N]
                              [--size 224] [--oversample 2] [--wait-idle SECONDS]
                              [--no-vit] [--no-memory] [--json OUT] [--markdown OUT]

What runs, per model size and budget N (all in ONE process, interleaved):

* ``fluxvit``: the FluxViT backbone forward (dual-norm patch embedding, the
  group-dynamic selector, global positional embedding, blocks) on a
  ``oversample * N``-token input (T = oversample * N / (size/14)^2 frames of
  size x size), so the selector keeps N of them: the Token-Optimization setting.
  ``--oversample 1`` feeds exactly N tokens (no selection).
* ``mmaction-vit``: ``mmaction.models.backbones.vit_mae.VisionTransformer`` with
  the same width, depth, heads and MLP ratio, patch 14 and ``tubelet_size=1`` (its
  defaults are patch 16 / tubelet 2), ``qkv_bias=False`` and LayerScale 1e-5 like
  FluxViT, on the N-token grid (N / (size/14)^2 frames of size x size): the same
  token count as FluxViT's blocks (FluxViT has one more, its cls token). Its
  attention materialises the N x N matrix; FluxViT's does not.
* ``matmul``: the machine's own GEMM throughput on the model's linear-layer mix
  (qkv, proj, fc1, fc2 on batch * (N + 1) rows, weights laid out like
  ``nn.Linear``), in the same dtype, through ``F.linear`` (ATen's default GEMM:
  MKL / cuBLAS) and, on CPU, through oneDNN
  (``torch.ops.mkldnn._linear_pointwise``), which on some CPUs (e.g. AMD with
  MKL) is the faster fp32 GEMM: both rates are reported, and FluxViT's FLOP/s is
  printed as a fraction of each. oneDNN bf16 is timed only where oneDNN has bf16
  kernels (not on AVX2-only CPUs).
* FluxViT's parts timed on their own with the same inputs: ``selector``
  (``select_tokens`` + gather) and ``pos`` (the positional table, cached per grid
  in eval mode as in the forward, + the add); ``pos (uncached)`` is the first call
  for a new grid (interpolation of the stored table); ``patch_embed``.

Timing: ``torch.utils.benchmark.Timer`` under ``torch.inference_mode``; fp32, or
bf16 via ``torch.autocast`` (weights stay fp32, as deployed from an fp32
checkpoint). The configurations are interleaved: ``--warmup`` untimed rounds call
each once, then each of the ``--iters`` timed rounds runs every configuration's
``Timer.blocked_autorange(min_run_time=--min-run-time)`` in turn, so background
load hits all of them alike (``blocked_autorange`` first sizes its blocks with
untimed calls, one for a slow forward, then times blocks of calls for at least
``--min-run-time`` seconds: one call of a slow forward, many of a fast part). The rounds' ``Measurement`` objects
are merged per configuration; the reported time is the best (minimum) per-call
time of the blocks, the robust statistic on a shared machine, with
``Measurement.median`` and ``.iqr`` next to it. Each round also records the CPU
share the process got (process CPU time / wall time / threads); ``clean`` counts
rounds with a share >= 0.9. On a shared machine use ``--wait-idle 120`` (wait up
to 120 s before each round for the other processes to leave the CPU idle).
``clips/s = batch / time``; FLOP/s = 2 x MACs (``torch.utils.flop_counter``, the
paper's convention) / time.

Ratios: for every FluxViT row the script prints what it measured side by side in
the same run: FluxViT / MMAction2 ViT clips/s, FluxViT FLOP/s as a fraction of
the ATen and the oneDNN matmul FLOP/s, bf16 / fp32 speed and the selector +
positional-embedding share of the forward. It states no pass/fail thresholds.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` minus the memory
allocated before the forward; on CPU the peak of the running sum of the tensor
allocations / frees recorded by ``torch.profiler(profile_memory=True)`` during one
forward (the first, warm-up, round). Both are the *extra* memory of a forward
(activations, attention matrices, workspaces allocated through torch), with the
weights (``weights MiB``) and the input already resident; oneDNN/MKL-internal
scratch buffers are not seen on CPU.

Every table is preceded by a ``# CPU:`` line: the model, the ATen vector ISA
(``torch.backends.cpu.get_cpu_capability()``) and bf16 support (oneDNN kernels;
native AVX512_BF16 / AMX instructions). On a CPU without native bf16, bf16 rows
are marked ``bf16*`` (emulated or generic kernels: expect no bf16 speed-up).

Tiny smoke test:
``--models tiny --budgets 64 --size 56 --iters 1 --warmup 0 --min-run-time 0.01``.
"""
import argparse
import json
import os
import os.path as osp
import resource
import time
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from torch.utils.benchmark import Measurement

os.environ.setdefault('KINETO_LOG_LEVEL', '5')  # keep the profiler quiet

# which FluxViT to build; its sizes (width, depth, heads, patch) are read off the built model
ARCHS = {
    's': dict(name='FluxViT-S', arch='small'),
    'b': dict(name='FluxViT-B', arch='base'),
    'tiny': dict(name='tiny', arch=dict(embed_dims=64, depth=2, num_heads=2, pos_frames=8,
                                        pos_side=8)),
}
ALIASES = {'small': 's', 'base': 'b', 'fluxvit-s': 's', 'fluxvit-b': 'b'}
CLEAN_SHARE = 0.9


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='FluxViT vs MMAction2 ViT: clips/s, FLOP/s and peak memory per budget.')
    parser.add_argument('--models', nargs='+', default=['s', 'b'],
                        help='model sizes: s, b (or tiny for a smoke test)')
    parser.add_argument('--budgets', nargs='+', type=int, default=[2048, 1024],
                        help='token budgets (tokens reaching the blocks)')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--dtype', nargs='+', default=['fp32', 'bf16'], choices=['fp32', 'bf16'])
    parser.add_argument('--warmup', type=int, default=1, help='untimed rounds')
    parser.add_argument('--iters', type=int, default=3, help='timed rounds')
    parser.add_argument('--min-run-time', type=float, default=0.2, metavar='SECONDS',
                        help='timed seconds per configuration and round, at least one call '
                             '(torch.utils.benchmark blocked_autorange)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch intra-op threads (default: torch default)')
    parser.add_argument('--size', type=int, default=224,
                        help='frame side (a multiple of the patch size, 14)')
    parser.add_argument('--oversample', type=int, default=2,
                        help='FluxViT input tokens = oversample x budget (selector keeps budget)')
    parser.add_argument('--wait-idle', type=float, default=0.0, metavar='SECONDS',
                        help='before each round wait up to SECONDS for an idle CPU (Linux)')
    parser.add_argument('--no-vit', action='store_true', help='skip the MMAction2 ViT')
    parser.add_argument('--no-memory', action='store_true', help='skip peak-memory measurement')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default=None, help='write all results as JSON')
    parser.add_argument('--markdown', default=None, help='write the tables as Markdown')
    args = parser.parse_args(argv)
    args.models = [ALIASES.get(m.lower(), m.lower()) for m in args.models]
    for m in args.models:
        if m not in ARCHS:
            parser.error(f'unknown model {m!r}; choose from {sorted(ARCHS)}')
    if args.oversample < 1:
        parser.error('--oversample must be >= 1')
    if args.iters < 1 or args.warmup < 0 or args.batch_size < 1:
        parser.error('--iters and --batch-size must be >= 1 and --warmup >= 0')
    if args.min_run_time < 0:
        parser.error('--min-run-time must be >= 0')
    return args


# ----------------------------------------------------------------------------- timing
class Entry:
    """One timed configuration: its callable, its Timer, one Measurement per timed round."""

    def __init__(self, key: Tuple, fn: Callable[[], object], info: Dict, threads: int):
        from torch.utils.benchmark import Timer
        self.key = key
        self.fn = fn
        self.info = info
        # num_threads: Timer would otherwise run the statement on ONE thread (its default)
        self.timer = Timer(stmt='fn()', globals=dict(fn=fn), num_threads=threads,
                           label=info['impl'], sub_label=f"{info['model']}@{info['budget']}",
                           description=info['dtype'])
        self.rounds: List[Tuple['Measurement', float]] = []  # (measurement, CPU share)
        self.peak_bytes: Optional[int] = None

    @property
    def measurement(self) -> Optional['Measurement']:
        """The timed rounds merged into one Measurement (per-call time of every block)."""
        from torch.utils.benchmark import Measurement
        return Measurement.merge(m for m, _ in self.rounds)[0] if self.rounds else None

    @property
    def times(self) -> List[float]:
        m = self.measurement
        return m.times if m is not None else []

    @property
    def best(self) -> float:
        return min(self.times) if self.rounds else float('nan')

    @property
    def median(self) -> float:
        return self.measurement.median if self.rounds else float('nan')

    @property
    def iqr(self) -> float:
        return self.measurement.iqr if self.rounds else float('nan')

    @property
    def shares(self) -> List[float]:
        return [share for _, share in self.rounds]

    @property
    def clean(self) -> int:
        return sum(1 for share in self.shares if share >= CLEAN_SHARE)

    @property
    def timed_calls(self) -> int:
        return sum(m.number_per_run * len(m.raw_times) for m, _ in self.rounds)


def _sync(device: str) -> None:
    import torch
    if device == 'cuda':
        torch.cuda.synchronize()


def time_round(entry: Entry, min_run_time: float, device: str,
               threads: int) -> Tuple['Measurement', float]:
    """One timed round of ``entry``: its Measurement and the CPU share the process got.

    The share (process CPU time / wall time / threads, over the whole
    ``blocked_autorange`` call) says whether other processes took the CPU meanwhile.
    """
    c0, t0 = time.process_time(), time.perf_counter()
    measurement = entry.timer.blocked_autorange(min_run_time=min_run_time)
    t1, c1 = time.perf_counter(), time.process_time()
    share = (c1 - c0) / max(t1 - t0, 1e-9) / threads if device == 'cpu' else 1.0
    return measurement, share


def _cpu_busy(interval: float = 0.5) -> float:
    """Fraction of the machine's CPU time that was busy over ``interval`` (Linux)."""
    def snap():
        with open('/proc/stat') as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]
    total0, idle0 = snap()
    time.sleep(interval)
    total1, idle1 = snap()
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def _wait_idle(seconds: float) -> Optional[bool]:
    """Wait up to ``seconds`` for two consecutive idle samples; True if found."""
    if seconds <= 0 or not osp.exists('/proc/stat'):
        return None
    deadline = time.time() + seconds
    quiet = 0
    while time.time() < deadline:
        quiet = quiet + 1 if _cpu_busy() < 0.1 else 0
        if quiet >= 2:
            return True
    return False


def _peak_bytes(fn: Callable[[], object], device: str) -> int:
    """Extra memory of one call of ``fn`` (see the module docstring)."""
    import torch
    if device == 'cuda':
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = []
    for ev in prof.profiler.kineto_results.events():
        if ev.name() == '[memory]' and ev.device_type() == torch.autograd.DeviceType.CPU:
            events.append((ev.start_ns(), ev.nbytes()))
    events.sort()
    peak = running = 0
    for _, nbytes in events:
        running += nbytes
        peak = max(peak, running)
    return peak


def run_rounds(entries: Sequence[Entry], args, device: str, threads: int) -> Dict:
    """All rounds, every entry once per round; fills ``entry.rounds`` and ``.peak_bytes``.

    Returns what the machine did meanwhile: wall time, CPU share, load average.
    """
    import torch
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    load0 = _loadavg()
    idle_waits = []
    t_start = time.perf_counter()
    with torch.inference_mode():
        for rnd in range(args.warmup + args.iters):
            timed = rnd >= args.warmup
            if timed and args.wait_idle > 0:
                idle_waits.append(_wait_idle(args.wait_idle))
            for e in entries:
                if rnd == 0 and not args.no_memory and e.info['impl'] in ('fluxvit',
                                                                          'mmaction-vit'):
                    e.peak_bytes = _peak_bytes(e.fn, device)
                    if not timed:
                        continue  # the profiled call was the warm-up of this entry
                if timed:
                    e.rounds.append(time_round(e, args.min_run_time, device, threads))
                else:
                    e.fn()
                    _sync(device)
    wall = time.perf_counter() - t_start
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    out = dict(wall_s=wall, cpu_share=cpu_s / wall / threads,
               loadavg_before_after=[load0, _loadavg()])
    if idle_waits:
        out['idle_found_before_rounds'] = idle_waits
    return out


def _loadavg() -> Optional[float]:
    try:
        with open('/proc/loadavg') as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _fmt(x: Optional[float], nd: int = 2) -> str:
    if x is None:
        return '-'
    if isinstance(x, float) and x != x:
        return 'nan'
    return f'{x:.{nd}f}'


# ----------------------------------------------------------------------------- building
def build_fluxvit(spec):
    from mmaction.registry import MODELS

    # default (PyTorch) init: speed does not depend on the values; init_weights()
    # would only add log noise
    return MODELS.build(dict(type='FluxViT', arch=spec['arch'])).eval()


def tokens_per_frame(flux, size, budgets):
    """Patch tokens of one size x size frame, as the model counts them; budgets must fill frames."""
    try:
        _, hp, wp = flux.token_grid(flux.tubelet_size, size, size)
    except ValueError as err:
        raise SystemExit(f'--size {size}: {err}') from None
    per_frame = hp * wp
    for b in budgets:
        if b < 1 or b % per_frame:
            raise SystemExit(f'budget {b} is not a multiple of the {per_frame} tokens per '
                             f'{size}x{size} frame; change --size or --budgets')
    return per_frame


def build_vit(flux, frames, size):
    """MMAction2's ViT with the FluxViT's width, depth, heads and patch."""
    from mmaction.models.backbones.vit_mae import VisionTransformer
    arch = flux.arch_settings
    return VisionTransformer(
        img_size=size, patch_size=flux.patch_size, embed_dims=arch['embed_dims'],
        depth=arch['depth'], num_heads=arch['num_heads'], mlp_ratio=arch['mlp_ratio'],
        qkv_bias=False, init_values=1e-5, num_frames=frames, tubelet_size=1,
        use_mean_pooling=True).eval()


def _onednn_linear():
    import torch
    if not torch.backends.mkldnn.is_available():
        return None
    return getattr(getattr(torch.ops, 'mkldnn', None), '_linear_pointwise', None)


def _dtype_label(dname, machine):
    """``bf16*`` where the CPU has no native bf16 (see the ``# CPU:`` line)."""
    if dname == 'bf16' and machine['device'] == 'cpu' and not machine['native_bf16']:
        return 'bf16*'
    return dname


def _cpu_lines(machine):
    """The lines printed above every table."""
    lines = [f"# CPU: {machine['cpu_line']}"]
    if machine['device'] == 'cpu':
        lines.append(f"# fast path (mmflux.models.layers.onednn): {machine['fast_path']}")
        if not machine['native_bf16'] and 'bf16' in machine['dtypes']:
            lines.append('# bf16*: this CPU has no native bf16 (AVX512_BF16 / AMX); bf16 runs '
                         'on ' + ('oneDNN\'s emulation' if machine['onednn_bf16'] else
                                  'generic eager kernels (oneDNN has no bf16 here)') +
                         ', so a bf16 speed-up is not expected.')
    return lines


def build_entries(args, machine: Dict, threads: int) -> List[Entry]:
    """Every timed configuration: per model, budget and dtype the two forwards, the
    matmul references and FluxViT's parts, on the same inputs."""
    import torch
    import torch.nn.functional as F
    from mmflux.utils.flops import count_module_macs

    device = args.device
    B = args.batch_size
    dtypes = {'fp32': torch.float32, 'bf16': torch.bfloat16}
    onednn = _onednn_linear() if device == 'cpu' else None
    entries = []
    for mkey in args.models:
        spec = ARCHS[mkey]
        flux = build_fluxvit(spec).to(device)
        per_frame = tokens_per_frame(flux, args.size, args.budgets)
        C = flux.embed_dims
        flux_weights = sum(p.numel() * p.element_size() for p in flux.parameters()) / 2**20
        for budget in args.budgets:
            t_vit = budget // per_frame
            t_flux = t_vit * args.oversample
            x_flux = torch.randn(B, 3, t_flux, args.size, args.size, device=device)
            x_vit = torch.randn(B, 3, t_vit, args.size, args.size, device=device)
            flux_macs = count_module_macs(flux, (1, 3, t_flux, args.size, args.size),
                                          budget=budget)
            vit = None
            if not args.no_vit:
                vit = build_vit(flux, t_vit, args.size).to(device)
                vit_macs = count_module_macs(vit, (1, 3, t_vit, args.size, args.size))
                vit_weights = sum(p.numel() * p.element_size() for p in vit.parameters()) / 2**20
            rows = B * (budget + flux.num_prefix_tokens)
            hidden = int(C * flux.arch_settings['mlp_ratio'])
            shapes = [(C, 3 * C), (C, C), (C, hidden), (hidden, C)]  # (in, out) of each linear
            mm_gflop = sum(2 * rows * i * o for i, o in shapes) / 1e9
            for dname in args.dtype:
                dt = dtypes[dname]
                common = dict(model=spec['name'], mkey=mkey, budget=budget, dtype=dname, batch=B)
                use_autocast = dname == 'bf16'

                def add(impl, fn, autocast=use_autocast, **info):
                    if autocast:
                        def run(fn=fn):
                            with torch.autocast(device_type=device, dtype=torch.bfloat16):
                                return fn()
                    else:
                        run = fn
                    entries.append(Entry((impl, mkey, budget, dname), run,
                                         dict(common, impl=impl, **info), threads))

                add('fluxvit', lambda m=flux, x=x_flux, b=budget: m(x, budget=b),
                    grid=[t_flux, args.size, args.size], tokens=budget, gmacs_clip=flux_macs,
                    weights_mib=flux_weights)
                if vit is not None:
                    add('mmaction-vit', lambda m=vit, x=x_vit: m(x),
                        grid=[t_vit, args.size, args.size], tokens=budget, gmacs_clip=vit_macs,
                        weights_mib=vit_weights)
                # the machine's GEMM throughput on this model's linear-layer mix
                xs = {i: torch.randn(rows, i, device=device, dtype=dt)
                      for i in {s[0] for s in shapes}}
                ws = [torch.randn(o, i, device=device, dtype=dt) for i, o in shapes]

                def mm_aten(xs=xs, ws=ws, shapes=shapes):
                    for (i, _), w in zip(shapes, ws):
                        F.linear(xs[i], w)
                add('matmul', mm_aten, autocast=False, gflop=mm_gflop)
                if onednn is not None and (dname == 'fp32' or machine['onednn_bf16']):
                    def mm_onednn(xs=xs, ws=ws, shapes=shapes):
                        for (i, _), w in zip(shapes, ws):
                            onednn(xs[i], w, None, 'none', [], None)
                    add('matmul-onednn', mm_onednn, autocast=False, gflop=mm_gflop)
                # FluxViT parts, same inputs as the forward
                with torch.inference_mode(), torch.autocast(device, enabled=use_autocast,
                                                            dtype=torch.bfloat16):
                    patch_tokens = flux.patch_embed(x_flux)
                T, hp, wp = flux.token_grid(t_flux, args.size, args.size)

                def sel_fn(m=flux, tok=patch_tokens, b=budget):
                    kept = m.select_tokens(tok, b)
                    flat = tok.reshape(tok.shape[0], -1, tok.shape[-1])
                    if kept is not None:
                        torch.gather(flat, 1, kept.unsqueeze(-1).expand(-1, -1, flat.shape[-1]))

                def pos_fn(m=flux, tok=patch_tokens, T=T, hp=hp, wp=wp):
                    pos = m.positional_embedding(T, hp, wp).to(tok.dtype)
                    return tok.reshape(tok.shape[0], -1, tok.shape[-1]) + pos

                def pos_uncached_fn(m=flux, tok=patch_tokens, T=T, hp=hp, wp=wp):
                    getattr(m, '_pos_cache', {}).clear()
                    pos = m.positional_embedding(T, hp, wp).to(tok.dtype)
                    return tok.reshape(tok.shape[0], -1, tok.shape[-1]) + pos

                for part, fn in (('selector', sel_fn), ('pos', pos_fn),
                                 ('pos_uncached', pos_uncached_fn),
                                 ('patch_embed', lambda m=flux, x=x_flux: m.patch_embed(x))):
                    add(part, fn)
    return entries


# ----------------------------------------------------------------------------- report
TABLE_HEADERS = ['model', 'budget', 'dtype', 'impl', 'input TxHxW', 'GMACs/clip', 's/batch',
                 'median', 'IQR', 'clean', 'clips/s', 'GFLOP/s', 'mm GFLOP/s', '% mm',
                 'oneDNN mm GFLOP/s', '% oneDNN', 'act. peak MiB', 'weights MiB']
PART_HEADERS = ['model', 'budget', 'dtype', 'impl', 'forward ms', 'patch_embed ms', '%',
                'selector ms', '%', 'pos ms', '%', 'pos uncached ms']


def collect_results(entries: Sequence[Entry], machine: Dict) -> List[Dict]:
    """One JSON row per forward and matmul entry: times, rates and (FluxViT) part shares."""
    by_key = {e.key: e for e in entries}

    def gflops_of(kind, info):
        mm = by_key.get((kind, info['mkey'], info['budget'], info['dtype']))
        return mm.info['gflop'] / mm.best if mm is not None else None

    results = []
    for e in entries:
        info = e.info
        if info['impl'] not in ('fluxvit', 'mmaction-vit', 'matmul', 'matmul-onednn'):
            continue
        row = dict(info, time_best_s=e.best, time_median_s=e.median, time_iqr_s=e.iqr,
                   times_s=e.times, timed_calls=e.timed_calls, cpu_shares=e.shares,
                   clean_iters=e.clean, dtype_label=_dtype_label(info['dtype'], machine))
        if info['impl'].startswith('matmul'):
            row['gflops'] = info['gflop'] / e.best
            results.append(row)
            continue
        row['clips_per_s'] = info['batch'] / e.best
        row['gflops'] = 2 * info['gmacs_clip'] * info['batch'] / e.best
        row['matmul_gflops'] = gflops_of('matmul', info)
        row['matmul_onednn_gflops'] = gflops_of('matmul-onednn', info)
        row['matmul_frac'] = (row['gflops'] / row['matmul_gflops']
                              if row['matmul_gflops'] else None)
        row['matmul_onednn_frac'] = (row['gflops'] / row['matmul_onednn_gflops']
                                     if row['matmul_onednn_gflops'] else None)
        row['act_peak_mib'] = e.peak_bytes / 2**20 if e.peak_bytes is not None else None
        if info['impl'] == 'fluxvit':
            for part in ('selector', 'pos', 'pos_uncached', 'patch_embed'):
                pe = by_key[(part, info['mkey'], info['budget'], info['dtype'])]
                row[f'{part}_ms'] = pe.best * 1e3
                row[f'{part}_share'] = pe.best / e.best
        results.append(row)
    return results


def table_rows(results: Sequence[Dict]) -> List[List[str]]:
    """The main table: one row per forward (FluxViT and MMAction2 ViT)."""
    def pct(frac):
        return _fmt(100 * frac, 1) if frac is not None else '-'

    return [[r['model'], r['budget'], r['dtype_label'], r['impl'], 'x'.join(map(str, r['grid'])),
             f"{r['gmacs_clip']:.4g}", _fmt(r['time_best_s'], 3), _fmt(r['time_median_s'], 3),
             _fmt(r['time_iqr_s'], 3), f"{r['clean_iters']}/{len(r['cpu_shares'])}",
             _fmt(r['clips_per_s'], 3), _fmt(r['gflops'], 1), _fmt(r['matmul_gflops'], 1),
             pct(r['matmul_frac']), _fmt(r['matmul_onednn_gflops'], 1),
             pct(r['matmul_onednn_frac']), _fmt(r['act_peak_mib'], 0),
             _fmt(r['weights_mib'], 0)]
            for r in results if r['impl'] in ('fluxvit', 'mmaction-vit')]


def part_rows(results: Sequence[Dict]) -> List[List[str]]:
    """The parts table: FluxViT's patch embedding, selector and positional embedding."""
    return [[r['model'], r['budget'], r['dtype_label'], 'fluxvit', _fmt(r['time_best_s'] * 1e3, 1),
             _fmt(r['patch_embed_ms'], 2), _fmt(100 * r['patch_embed_share'], 2),
             _fmt(r['selector_ms'], 2), _fmt(100 * r['selector_share'], 2),
             _fmt(r['pos_ms'], 2), _fmt(100 * r['pos_share'], 2), _fmt(r['pos_uncached_ms'], 2)]
            for r in results if r['impl'] == 'fluxvit']


def _ratio(r: Dict, name: str, value: Optional[float], unit: str, detail: str) -> Dict:
    return dict(model=r['model'], budget=r['budget'], dtype=r['dtype'], batch=r['batch'],
                dtype_label=r['dtype_label'], name=name, value=value, unit=unit, detail=detail)


def ratios_of(results: Sequence[Dict]) -> List[Dict]:
    """Measured ratios of every FluxViT row against what ran beside it in this run.

    Each ratio keeps the two measured numbers it divides (``detail``); no
    threshold is applied: reading them against a goal is the reader's business.
    """
    rows = {(r['impl'], r['mkey'], r['budget'], r['dtype']): r for r in results}
    out = []
    for r in results:
        if r['impl'] != 'fluxvit':
            continue
        vit = rows.get(('mmaction-vit', r['mkey'], r['budget'], r['dtype']))
        if vit is not None:
            out.append(_ratio(r, 'FluxViT / mmaction-ViT clips/s',
                              r['clips_per_s'] / vit['clips_per_s'], 'x',
                              f"{r['clips_per_s']:.3f} vs {vit['clips_per_s']:.3f} clips/s"))
        for name, key, ref in (('FluxViT FLOP/s / matmul FLOP/s', 'matmul_frac',
                                'matmul_gflops'),
                               ('FluxViT FLOP/s / oneDNN matmul FLOP/s', 'matmul_onednn_frac',
                                'matmul_onednn_gflops')):
            if key == 'matmul_frac' or r[key] is not None:
                detail = (f"{r['gflops']:.4g} vs {r[ref]:.4g} GFLOP/s"
                          if r[ref] is not None else 'no matmul measured')
                out.append(_ratio(r, name, r[key], '', detail))
        fp = rows.get(('fluxvit', r['mkey'], r['budget'], 'fp32'))
        if r['dtype'] != 'fp32' and fp is not None:
            out.append(_ratio(r, 'bf16 / fp32 speed', r['clips_per_s'] / fp['clips_per_s'], 'x',
                              f"{r['clips_per_s']:.3f} vs {fp['clips_per_s']:.3f} clips/s"))
        out.append(_ratio(r, 'selector + pos share of forward',
                          r['selector_share'] + r['pos_share'], '%',
                          f"{r['selector_ms']:.2f} + {r['pos_ms']:.2f} ms of "
                          f"{1e3 * r['time_best_s']:.1f} ms"))
    return out


def _ratio_value(ratio: Dict) -> str:
    value = ratio['value']
    if value is None:
        return '-'
    if ratio['unit'] == '%':
        return f'{100 * value:.2f}%'
    return f"{value:.2f}{ratio['unit']}"


def ratio_line(ratio: Dict) -> str:
    """``ratio S@2048 fp32 b2: <name> = <value> (<the two numbers>)``."""
    return (f"ratio {ratio['model']}@{ratio['budget']} {ratio['dtype_label']} b{ratio['batch']}: "
            f"{ratio['name']} = {_ratio_value(ratio)} ({ratio['detail']})")


def write_markdown(path: str, machine: Dict, results: Sequence[Dict],
                   ratios: Sequence[Dict]) -> None:
    """The three tables (main, parts, ratios) as Markdown, each under the CPU lines."""
    from mmflux.utils.tables import markdown_table
    cpu_md = ''.join(f'{line[2:]}  \n' for line in _cpu_lines(machine)) + '\n'
    with open(path, 'w') as f:
        f.write(f'Machine: {machine}\n\n')
        f.write(cpu_md + markdown_table(TABLE_HEADERS, table_rows(results)) + '\n\n')
        f.write(cpu_md + markdown_table(PART_HEADERS, part_rows(results)) + '\n\n')
        f.write(cpu_md)
        for r in ratios:
            if r['value'] is not None:
                f.write(f"- {r['model']}@{r['budget']} {r['dtype_label']}: {r['name']} = "
                        f"{r['value']:.3f} ({r['detail']})\n")


def describe_machine(args, threads: int) -> Dict:
    """Device, torch, CPU (from :mod:`mmflux.utils.cpu_info`) and the fast path in use."""
    import torch
    from mmflux.models.layers import onednn as fast_path
    from mmflux.utils.cpu_info import cpu_info, describe_cpu
    cpu = cpu_info()
    machine = dict(device=args.device, torch=torch.__version__, threads=threads,
                   cpu=cpu['model'], cores=cpu['cores'], cpu_capability=cpu['capability'],
                   onednn_bf16=cpu['onednn_bf16'], native_bf16=cpu['native_bf16'],
                   cpu_line=describe_cpu(cpu), dtypes=list(args.dtype))
    if args.device == 'cpu':
        fast = fast_path.fast_dtypes() if fast_path._LINEAR_POINTWISE is not None else ()
        machine['fast_path'] = ', '.join(
            f"{name} {'oneDNN' if dt in fast else 'eager'}"
            for name, dt in (('fp32', torch.float32), ('bf16', torch.bfloat16)))
    else:
        machine['gpu'] = torch.cuda.get_device_name()
    return machine


def main(argv=None):
    args = parse_args(argv)
    import torch
    from mmengine.registry import init_default_scope
    import mmflux  # noqa: F401
    from mmflux.utils.tables import text_table

    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda requested but CUDA is not available')
    if args.threads:
        torch.set_num_threads(args.threads)
    init_default_scope('mmaction')
    torch.manual_seed(args.seed)
    threads = max(1, torch.get_num_threads())
    machine = describe_machine(args, threads)
    print(f'# benchmark: {machine}')
    print(f'# batch {args.batch_size}, frame {args.size}x{args.size}, oversample '
          f'{args.oversample}, warmup {args.warmup}, iters {args.iters}, '
          f'min run time {args.min_run_time} s per configuration and round')

    entries = build_entries(args, machine, threads)
    run = run_rounds(entries, args, args.device, threads)
    wall = run.pop('wall_s')
    machine.update(run)

    results = collect_results(entries, machine)
    ratios = ratios_of(results)
    cpu_lines = '\n'.join(_cpu_lines(machine))
    print(f'\n{cpu_lines}\n' + text_table(TABLE_HEADERS, table_rows(results), left=4))
    print(f'\n{cpu_lines}\n' + text_table(PART_HEADERS, part_rows(results), left=4))
    print(f'\n{cpu_lines}')
    for ratio in ratios:
        print(ratio_line(ratio))
    print(f'# timed loop: {wall:.1f} s wall; CPU share obtained {100 * machine["cpu_share"]:.0f}% '
          f'of {threads} threads; load average before/after {machine["loadavg_before_after"]}')
    if args.device == 'cpu' and any(e.rounds and e.clean < len(e.rounds) for e in entries
                                    if e.info['impl'] in ('fluxvit', 'mmaction-vit')):
        print('# WARNING: some timed rounds ran while other processes used the CPU (clean < '
              'iters); best-of times are used, but rerun on an idle machine (or with '
              '--wait-idle 120) before trusting the ratios.')

    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(machine=machine, args=vars(args), results=results, ratios=ratios,
                           wall_s=wall), f, indent=2)
    if args.markdown:
        write_markdown(args.markdown, machine, results, ratios)
    return dict(machine=machine, results=results, ratios=ratios)


if __name__ == '__main__':
    main()
