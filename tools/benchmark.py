"""Inference speed and memory of FluxViT vs MMAction2's VisionTransformer, one run.

Usage (from the repository root)::

    python tools/benchmark.py [--models s b] [--budgets 2048 1024] [--batch-size 2]
                              [--device cpu|cuda] [--dtype fp32 bf16]
                              [--warmup 1] [--iters 3] [--threads N]
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
  MKL / cuBLAS, the reference of the issue's "fraction of matmul FLOP/s") and, on
  CPU, through oneDNN (``torch.ops.mkldnn._linear_pointwise``), which on some CPUs
  (e.g. AMD with MKL) is the faster fp32 GEMM: both ceilings are reported. oneDNN
  bf16 is timed only where oneDNN has bf16 kernels (not on AVX2-only CPUs).
* FluxViT's parts timed on their own with the same inputs: ``selector``
  (``select_tokens`` + gather) and ``pos`` (the positional table, cached per grid
  in eval mode as in the forward, + the add); ``pos (uncached)`` is the first call
  for a new grid (interpolation of the stored table); ``patch_embed``.

Timing: ``torch.inference_mode``; fp32, or bf16 via ``torch.autocast`` (weights
stay fp32, as deployed from an fp32 checkpoint); every configuration runs once per
round, rounds repeat ``warmup + iters`` times, so background load hits all of them
alike. The reported time is the best (minimum) of the timed rounds, the robust
statistic on a shared machine; the median is shown next to it. Each timing also
records the CPU share the process got (process CPU time / wall time / threads);
``clean`` counts timed rounds with a share >= 0.9. On a shared machine use
``--wait-idle 120`` (wait up to 120 s before each round for the other processes
to leave the CPU idle). ``clips/s = batch / time``; FLOP/s = 2 x MACs
(``torch.utils.flop_counter``, the paper's convention) / time.

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

Tiny smoke test: ``--models tiny --budgets 64 --size 56 --iters 1 --warmup 0``.
"""
import argparse
import json
import os
import os.path as osp
import platform
import resource
import statistics
import time

os.environ.setdefault('KINETO_LOG_LEVEL', '5')  # keep the profiler quiet

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# which FluxViT to build; its sizes (width, depth, heads, patch) are read off the built model
ARCHS = {
    's': dict(name='FluxViT-S', arch='small'),
    'b': dict(name='FluxViT-B', arch='base'),
    'tiny': dict(name='tiny', arch=dict(embed_dims=64, depth=2, num_heads=2, pos_frames=8,
                                        pos_side=8)),
}
ALIASES = {'small': 's', 'base': 'b', 'fluxvit-s': 's', 'fluxvit-b': 'b'}
CLEAN_SHARE = 0.9

# issue targets, checked for FluxViT-S at 2048 tokens, batch 2, on CPU
TARGETS = dict(vs_vit=1.7, matmul_frac=0.75, bf16_speedup=1.4, sel_pos_share=0.03)


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
    return args


# ----------------------------------------------------------------------------- helpers
class Entry:
    """One timed thing: a callable, its (time, cpu share) samples and what it is."""

    def __init__(self, key, fn, info, repeat=1):
        self.key = key
        self.fn = fn
        self.info = info
        self.repeat = repeat
        self.samples = []
        self.peak_bytes = None

    @property
    def times(self):
        return [t for t, _ in self.samples]

    @property
    def best(self):
        return min(self.times) if self.samples else float('nan')

    @property
    def median(self):
        return statistics.median(self.times) if self.samples else float('nan')

    @property
    def clean(self):
        return sum(1 for _, share in self.samples if share >= CLEAN_SHARE)


def _sync(device):
    import torch
    if device == 'cuda':
        torch.cuda.synchronize()


def _run_timed(entry, device, threads):
    """Best of ``entry.repeat`` calls: (seconds, CPU share of that call)."""
    best = (float('inf'), 0.0)
    for _ in range(entry.repeat):
        _sync(device)
        c0, t0 = time.process_time(), time.perf_counter()
        entry.fn()
        _sync(device)
        t1, c1 = time.perf_counter(), time.process_time()
        share = (c1 - c0) / max(t1 - t0, 1e-9) / threads if device == 'cpu' else 1.0
        if t1 - t0 < best[0]:
            best = (t1 - t0, share)
    return best


def _cpu_busy(interval=0.5):
    """Fraction of the machine's CPU time that was busy over ``interval`` (Linux)."""
    def snap():
        with open('/proc/stat') as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]
    total0, idle0 = snap()
    time.sleep(interval)
    total1, idle1 = snap()
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def _wait_idle(seconds):
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


def _peak_bytes(fn, device):
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


def _loadavg():
    try:
        with open('/proc/loadavg') as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _fmt(x, nd=2):
    if x is None:
        return '-'
    if isinstance(x, float) and x != x:
        return 'nan'
    return f'{x:.{nd}f}'


def _table(rows, headers, left=4):
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for i, r in enumerate(cells):
        out.append('  '.join(c.ljust(w) if j < left else c.rjust(w)
                             for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0:
            out.append('  '.join('-' * w for w in widths))
    return '\n'.join(out)


def _md_table(rows, headers):
    lines = ['| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)]
    lines += ['| ' + ' | '.join(str(c) for c in r) + ' |' for r in rows]
    return '\n'.join(lines)


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


def main(argv=None):
    args = parse_args(argv)
    import torch
    import torch.nn.functional as F
    from mmengine.registry import init_default_scope
    import mmflux  # noqa: F401
    from mmflux.models.layers import onednn as fast_path
    from mmflux.utils.cpu_info import cpu_info, describe_cpu
    from mmflux.utils.flops import count_module_macs

    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda requested but CUDA is not available')
    if args.threads:
        torch.set_num_threads(args.threads)
    init_default_scope('mmaction')
    torch.manual_seed(args.seed)
    device = args.device
    threads = max(1, torch.get_num_threads())
    B = args.batch_size
    dtypes = {'fp32': torch.float32, 'bf16': torch.bfloat16}
    onednn = _onednn_linear() if device == 'cpu' else None
    cpu = cpu_info()

    machine = dict(device=device, torch=torch.__version__, threads=threads, cpu=_cpu_name(),
                   cores=os.cpu_count(), cpu_capability=cpu['capability'],
                   onednn_bf16=cpu['onednn_bf16'], native_bf16=cpu['native_bf16'],
                   cpu_line=describe_cpu(cpu), dtypes=list(args.dtype))
    if device == 'cpu':
        fast = fast_path.fast_dtypes() if fast_path._LINEAR_POINTWISE is not None else ()
        machine['fast_path'] = ', '.join(
            f"{name} {'oneDNN' if dt in fast else 'eager'}" for name, dt in dtypes.items())
    if device == 'cuda':
        machine['gpu'] = torch.cuda.get_device_name()
    print(f'# benchmark: {machine}')
    print(f'# batch {B}, frame {args.size}x{args.size}, oversample '
          f'{args.oversample}, warmup {args.warmup}, iters {args.iters}')

    entries = []
    keep = []  # keep models alive
    for mkey in args.models:
        spec = ARCHS[mkey]
        flux = build_fluxvit(spec).to(device)
        per_frame = tokens_per_frame(flux, args.size, args.budgets)
        C = flux.embed_dims
        keep.append(flux)
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
                keep.append(vit)
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

                def wrap(fn, use_autocast=use_autocast):
                    if not use_autocast:
                        return fn

                    def run():
                        with torch.autocast(device_type=device, dtype=torch.bfloat16):
                            return fn()
                    return run

                entries.append(Entry(
                    ('fluxvit', mkey, budget, dname),
                    wrap(lambda m=flux, x=x_flux, b=budget: m(x, budget=b)),
                    dict(common, impl='fluxvit', grid=[t_flux, args.size, args.size],
                         tokens=budget, gmacs_clip=flux_macs, weights_mib=flux_weights)))
                if vit is not None:
                    entries.append(Entry(
                        ('mmaction-vit', mkey, budget, dname), wrap(lambda m=vit, x=x_vit: m(x)),
                        dict(common, impl='mmaction-vit', grid=[t_vit, args.size, args.size],
                             tokens=budget, gmacs_clip=vit_macs, weights_mib=vit_weights)))
                # the machine's GEMM throughput on this model's linear-layer mix
                xs = {i: torch.randn(rows, i, device=device, dtype=dt)
                      for i in {s[0] for s in shapes}}
                ws = [torch.randn(o, i, device=device, dtype=dt) for i, o in shapes]

                def mm_aten(xs=xs, ws=ws, shapes=shapes):
                    for (i, _), w in zip(shapes, ws):
                        F.linear(xs[i], w)
                entries.append(Entry(('matmul', mkey, budget, dname), mm_aten,
                                     dict(common, impl='matmul', gflop=mm_gflop), repeat=3))
                if onednn is not None and (dname == 'fp32' or cpu['onednn_bf16']):
                    def mm_onednn(xs=xs, ws=ws, shapes=shapes):
                        for (i, _), w in zip(shapes, ws):
                            onednn(xs[i], w, None, 'none', [], None)
                    entries.append(Entry(('matmul-onednn', mkey, budget, dname), mm_onednn,
                                         dict(common, impl='matmul-onednn', gflop=mm_gflop),
                                         repeat=3))
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
                    entries.append(Entry((part, mkey, budget, dname), wrap(fn),
                                         dict(common, impl=part), repeat=3))

    # ------------------------------------------------------------------ run
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    load0 = _loadavg()
    idle_waits = []
    t_start = time.perf_counter()
    with torch.inference_mode():
        for rnd in range(args.warmup + args.iters):
            if rnd >= args.warmup and args.wait_idle > 0:
                idle_waits.append(_wait_idle(args.wait_idle))
            for e in entries:
                if rnd == 0 and not args.no_memory and e.info['impl'] in ('fluxvit',
                                                                          'mmaction-vit'):
                    e.peak_bytes = _peak_bytes(e.fn, device)
                    if args.warmup > 0:
                        continue  # the profiled call was the warm-up of this entry
                sample = _run_timed(e, device, threads)
                if rnd >= args.warmup:
                    e.samples.append(sample)
    wall = time.perf_counter() - t_start
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    machine['cpu_share'] = cpu_s / wall / threads
    machine['loadavg_before_after'] = [load0, _loadavg()]
    if idle_waits:
        machine['idle_found_before_rounds'] = idle_waits

    # ------------------------------------------------------------------ report
    by_key = {e.key: e for e in entries}

    def gflops_of(kind, info):
        mm = by_key.get((kind, info['mkey'], info['budget'], info['dtype']))
        return mm.info['gflop'] / mm.best if mm is not None else None

    results, table_rows = [], []
    for e in entries:
        info = e.info
        if info['impl'] not in ('fluxvit', 'mmaction-vit', 'matmul', 'matmul-onednn'):
            continue
        row = dict(info, time_best_s=e.best, time_median_s=e.median, times_s=e.times,
                   cpu_shares=[s for _, s in e.samples], clean_iters=e.clean,
                   dtype_label=_dtype_label(info['dtype'], machine))
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
        table_rows.append([
            info['model'], info['budget'], _dtype_label(info['dtype'], machine), info['impl'],
            'x'.join(map(str, info['grid'])), f"{info['gmacs_clip']:.4g}",
            _fmt(e.best, 3), _fmt(e.median, 3), f'{e.clean}/{len(e.samples)}',
            _fmt(row['clips_per_s'], 3), _fmt(row['gflops'], 1),
            _fmt(row['matmul_gflops'], 1),
            _fmt(100 * row['matmul_frac'], 1) if row['matmul_frac'] is not None else '-',
            _fmt(row['matmul_onednn_gflops'], 1),
            _fmt(100 * row['matmul_onednn_frac'], 1) if row['matmul_onednn_frac'] else '-',
            _fmt(row['act_peak_mib'], 0), _fmt(info['weights_mib'], 0)])
    headers = ['model', 'budget', 'dtype', 'impl', 'input TxHxW', 'GMACs/clip', 's/batch',
               'median', 'clean', 'clips/s', 'GFLOP/s', 'mm GFLOP/s', '% mm',
               'oneDNN mm GFLOP/s', '% oneDNN', 'act. peak MiB', 'weights MiB']
    print()
    print('\n'.join(_cpu_lines(machine)))
    print(_table(table_rows, headers))

    part_rows = []
    for r in results:
        if r['impl'] != 'fluxvit':
            continue
        part_rows.append([r['model'], r['budget'], _dtype_label(r['dtype'], machine), 'fluxvit',
                          _fmt(r['time_best_s'] * 1e3, 1),
                          _fmt(r['patch_embed_ms'], 2), _fmt(100 * r['patch_embed_share'], 2),
                          _fmt(r['selector_ms'], 2), _fmt(100 * r['selector_share'], 2),
                          _fmt(r['pos_ms'], 2), _fmt(100 * r['pos_share'], 2),
                          _fmt(r['pos_uncached_ms'], 2)])
    part_headers = ['model', 'budget', 'dtype', 'impl', 'forward ms', 'patch_embed ms', '%',
                    'selector ms', '%', 'pos ms', '%', 'pos uncached ms']
    print()
    print('\n'.join(_cpu_lines(machine)))
    print(_table(part_rows, part_headers))

    # ratios
    ratios = []
    print()
    print('\n'.join(_cpu_lines(machine)))
    for r in results:
        if r['impl'] != 'fluxvit':
            continue
        tag = f'{r["model"]}@{r["budget"]} {_dtype_label(r["dtype"], machine)} b{r["batch"]}'
        is_target = (r['mkey'] == 's' and r['budget'] == 2048 and r['batch'] == 2
                     and device == 'cpu')

        def line(name, value, fmt, target=None, higher=True, r=r, tag=tag,
                 is_target=is_target):
            mark = ''
            if target is not None and is_target and value is not None:
                ok = value >= target if higher else value <= target
                mark = (f'  [target {">=" if higher else "<="} {fmt(target)}: '
                        f'{"met" if ok else "MISSED"}]')
            print(f'ratio {tag}: {name} = {fmt(value) if value is not None else "-"}{mark}')
            ratios.append(dict(model=r['model'], budget=r['budget'], dtype=r['dtype'],
                               name=name, value=value, target=target if is_target else None))

        fp32 = r['dtype'] == 'fp32'
        vit = by_key.get(('mmaction-vit', r['mkey'], r['budget'], r['dtype']))
        if vit is not None:
            line('FluxViT / mmaction-ViT clips/s', vit.best / r['time_best_s'],
                 lambda v: f'{v:.2f}x', TARGETS['vs_vit'] if fp32 else None)
        line('FluxViT FLOP/s / matmul FLOP/s', r['matmul_frac'], lambda v: f'{v:.2f}',
             TARGETS['matmul_frac'] if fp32 else None)
        if r['matmul_onednn_frac'] is not None:
            line('FluxViT FLOP/s / oneDNN matmul FLOP/s', r['matmul_onednn_frac'],
                 lambda v: f'{v:.2f}')
        if not fp32:
            fp = by_key.get(('fluxvit', r['mkey'], r['budget'], 'fp32'))
            if fp is not None:
                # no target where the CPU cannot run bf16 natively (row marked bf16*)
                line('bf16 / fp32 speed', fp.best / r['time_best_s'], lambda v: f'{v:.2f}x',
                     TARGETS['bf16_speedup'] if machine['native_bf16'] else None)
        line('selector + pos share of forward', r['selector_share'] + r['pos_share'],
             lambda v: f'{100 * v:.2f}%', TARGETS['sel_pos_share'] if fp32 else None,
             higher=False)
    print(f'# timed loop: {wall:.1f} s wall; CPU share obtained {100 * machine["cpu_share"]:.0f}% '
          f'of {threads} threads; load average before/after {machine["loadavg_before_after"]}')
    if device == 'cpu' and any(e.samples and e.clean < len(e.samples) for e in entries
                               if e.info['impl'] in ('fluxvit', 'mmaction-vit')):
        print('# WARNING: some timed rounds ran while other processes used the CPU (clean < '
              'iters); best-of times are used, but rerun on an idle machine (or with '
              '--wait-idle 120) before trusting the ratios.')

    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(machine=machine, args=vars(args), results=results, ratios=ratios,
                           wall_s=wall), f, indent=2)
    if args.markdown:
        with open(args.markdown, 'w') as f:
            cpu_md = ''.join(f'{line[2:]}  \n' for line in _cpu_lines(machine)) + '\n'
            f.write(f'Machine: {machine}\n\n')
            f.write(cpu_md + _md_table(table_rows, headers) + '\n\n')
            f.write(cpu_md + _md_table(part_rows, part_headers) + '\n\n')
            f.write(cpu_md)
            for r in ratios:
                if r['value'] is None:
                    continue
                f.write(f'- {r["model"]}@{r["budget"]} {_dtype_label(r["dtype"], machine)}: '
                        f'{r["name"]} = '
                        f'{r["value"]:.3f}' + (f' (target {r["target"]})' if r['target'] else '')
                        + '\n')
    return dict(machine=machine, results=results, ratios=ratios)


if __name__ == '__main__':
    main()
