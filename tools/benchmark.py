"""Inference speed and memory of FluxViT vs MMAction2's VisionTransformer, side by side, one run.

Usage (from the repository root)::

    python tools/benchmark.py [--models s b] [--budgets 2048 1024] [--batch-size 2]
                              [--device cpu|cuda] [--dtype fp32 bf16] [--size 224]
                              [--oversample 2] [--warmup 1] [--repeats 5] [--threads N]
                              [--no-vit] [--no-memory] [--json OUT] [--markdown OUT]

Rows, per model size, budget N and dtype, all built by the registries and all
plain eager PyTorch (the same kind of ops for both models):

* ``fluxvit``: the FluxViT backbone (``MODELS.build(dict(type='FluxViT', arch=...))``)
  on an ``oversample * N``-token input (T = oversample * N / (size/14)^2 frames of
  size x size); its group-dynamic selector keeps N tokens: the Token-Optimization
  setting. ``--oversample 1`` feeds exactly N tokens (no selection).
* ``mmaction-vit``: MMAction2's ``VisionTransformer`` (``MODELS.build``) with the same
  width, depth, heads and MLP ratio, patch 14, ``tubelet_size=1``, ``qkv_bias=False``
  and LayerScale 1e-5 like FluxViT, on the N-token grid: the same number of tokens
  in the blocks (FluxViT has one more, its cls token).
* ``matmul``: this machine's GEMM rate on the model's linear-layer mix (qkv, proj,
  fc1, fc2 on batch x (N + 1) rows) through ``F.linear``, in the same dtype: the
  roofline FluxViT's FLOP/s is compared with.
* ``selector``: ``FluxViT.select_tokens`` on the patch tokens (its share of the forward).

Timing: :mod:`mmflux.utils.timing` (``--warmup`` untimed rounds, then ``--repeats``
rounds that each run every row once, in turn, so background load hits all rows
alike); the table gives the median and p10-p90 per call and how many samples
had the CPU to themselves (``clean``). fp32, or bf16 through ``torch.autocast``
(weights stay fp32, as deployed from an fp32 checkpoint). FLOP/s = 2 x MACs
(``torch.utils.flop_counter``) / median time; clips/s = batch / median time.

Peak memory: on CUDA ``max_memory_allocated`` minus what was allocated before the
forward; on CPU the peak of the running sum of the allocations / frees that
``torch.profiler(profile_memory=True)`` records during one forward: the extra
memory of a forward (activations, attention matrices), weights and input excluded.

Every table is preceded by the ``# CPU:`` line (:func:`mmflux.utils.cpu_info.describe_cpu`):
model, ATen vector ISA, bf16 support. bf16 rows on a CPU without native bf16 are
marked ``bf16*`` (no bf16 speed-up expected). The tool prints measured ratios and
states no thresholds.

Tiny smoke test: ``--models tiny --budgets 64 --size 56 --repeats 1 --warmup 0``.
"""
import argparse
import json
import os
from typing import Callable, Dict, List, Optional, Sequence

os.environ.setdefault('KINETO_LOG_LEVEL', '5')  # keep the profiler quiet

#: a smoke-test size besides the registered FluxViT archs (s, b, small, base, ...)
TINY_ARCH = dict(embed_dims=64, depth=2, num_heads=2, pos_frames=8, pos_side=8)
FORWARDS = ('fluxvit', 'mmaction-vit')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='FluxViT vs MMAction2 ViT: clips/s, FLOP/s and peak memory per budget.')
    parser.add_argument('--models', nargs='+', default=['s', 'b'],
                        help="FluxViT archs as the backbone names them (s, b, small, base) "
                             "or 'tiny' for a smoke test")
    parser.add_argument('--budgets', nargs='+', type=int, default=[2048, 1024],
                        help='token budgets (tokens reaching the blocks)')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--dtype', nargs='+', default=['fp32', 'bf16'], choices=['fp32', 'bf16'])
    parser.add_argument('--warmup', type=int, default=1, help='untimed rounds')
    parser.add_argument('--repeats', type=int, default=5, help='timed rounds')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch intra-op threads (default: torch default)')
    parser.add_argument('--size', type=int, default=224,
                        help='frame side (a multiple of the patch size, 14)')
    parser.add_argument('--oversample', type=int, default=2,
                        help='FluxViT input tokens = oversample x budget (selector keeps budget)')
    parser.add_argument('--no-vit', action='store_true', help='skip the MMAction2 ViT')
    parser.add_argument('--no-memory', action='store_true', help='skip peak-memory measurement')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default=None, help='write all results as JSON')
    parser.add_argument('--markdown', default=None, help='write the tables as Markdown')
    args = parser.parse_args(argv)
    if args.oversample < 1:
        parser.error('--oversample must be >= 1')
    if args.repeats < 1 or args.warmup < 0 or args.batch_size < 1:
        parser.error('--repeats and --batch-size must be >= 1 and --warmup >= 0')
    return args


# ----------------------------------------------------------------------------- building
def build_fluxvit(arch: str):
    """The registered FluxViT backbone; the arch name is resolved (and checked) by it."""
    from mmaction.registry import MODELS
    # default (PyTorch) init: speed does not depend on the values
    return MODELS.build(dict(type='FluxViT', arch=TINY_ARCH if arch == 'tiny' else arch)).eval()


def build_vit(flux, frames: int, size: int):
    """MMAction2's registered ViT with the FluxViT's width, depth, heads and patch."""
    from mmaction.registry import MODELS
    arch = flux.arch_settings
    return MODELS.build(dict(
        type='VisionTransformer', img_size=size, patch_size=flux.patch_size,
        embed_dims=arch['embed_dims'], depth=arch['depth'], num_heads=arch['num_heads'],
        mlp_ratio=arch['mlp_ratio'], qkv_bias=False, init_values=1e-5, num_frames=frames,
        tubelet_size=1, use_mean_pooling=True)).eval()


def tokens_per_frame(flux, size: int, budgets: Sequence[int]) -> int:
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


def peak_bytes(fn: Callable[[], object], device: str) -> int:
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
    events = sorted((ev.start_ns(), ev.nbytes()) for ev in prof.profiler.kineto_results.events()
                    if ev.name() == '[memory]'
                    and ev.device_type() == torch.autograd.DeviceType.CPU)
    peak = running = 0
    for _, nbytes in events:
        running += nbytes
        peak = max(peak, running)
    return peak


def build_rows(args) -> List[Dict]:
    """Every timed row: ``info`` (what it is) and ``fn`` (a no-argument call)."""
    import torch
    import torch.nn.functional as F
    from mmflux.utils.flops import count_module_macs

    device, B = args.device, args.batch_size
    dtypes = {'fp32': torch.float32, 'bf16': torch.bfloat16}
    rows = []
    for arch in args.models:
        flux = build_fluxvit(arch).to(device)
        per_frame = tokens_per_frame(flux, args.size, args.budgets)
        C = flux.embed_dims
        hidden = int(C * flux.arch_settings['mlp_ratio'])
        shapes = [(C, 3 * C), (C, C), (C, hidden), (hidden, C)]  # (in, out) of each linear
        for budget in args.budgets:
            t_vit = budget // per_frame
            t_flux = t_vit * args.oversample
            x_flux = torch.randn(B, 3, t_flux, args.size, args.size, device=device)
            x_vit = torch.randn(B, 3, t_vit, args.size, args.size, device=device)
            models = dict(fluxvit=(flux, x_flux, dict(budget=budget), t_flux))
            if not args.no_vit:
                models['mmaction-vit'] = (build_vit(flux, t_vit, args.size).to(device), x_vit, {},
                                          t_vit)
            lin_rows = B * (budget + flux.num_prefix_tokens)
            for dname in args.dtype:
                autocast = dname == 'bf16'
                common = dict(model=arch, budget=budget, dtype=dname, batch=B)

                def add(impl, fn, **info):
                    def run(fn=fn):
                        with torch.inference_mode(), torch.autocast(
                                device_type=device, dtype=torch.bfloat16, enabled=autocast):
                            return fn()
                    rows.append(dict(info=dict(common, impl=impl, **info), fn=run))

                for impl, (model, x, kwargs, frames) in models.items():
                    add(impl, lambda m=model, x=x, kw=kwargs: m(x, **kw),
                        grid=[frames, args.size, args.size], tokens=budget,
                        gmacs_clip=count_module_macs(model, (1, 3, frames, args.size, args.size),
                                                     **kwargs),
                        weights_mib=sum(p.numel() * p.element_size()
                                        for p in model.parameters()) / 2**20)
                xs = {i: torch.randn(lin_rows, i, device=device, dtype=dtypes[dname])
                      for i in {s[0] for s in shapes}}
                ws = [torch.randn(o, i, device=device, dtype=dtypes[dname]) for i, o in shapes]

                def matmul(xs=xs, ws=ws):
                    for (i, _), w in zip(shapes, ws):
                        F.linear(xs[i], w)
                rows.append(dict(info=dict(common, impl='matmul',
                                           gflop=sum(2 * lin_rows * i * o for i, o in shapes) / 1e9),
                                 fn=matmul))
                with torch.inference_mode(), torch.autocast(device, torch.bfloat16,
                                                            enabled=autocast):
                    patch_tokens = flux.patch_embed(x_flux)
                add('selector', lambda m=flux, tok=patch_tokens, b=budget: m.select_tokens(tok, b))
    return rows


# ----------------------------------------------------------------------------- report
TABLE_HEADERS = ['model', 'budget', 'dtype', 'impl', 'input TxHxW', 'GMACs/clip', 'ms/batch',
                 'p10-p90 ms', 'clean', 'clips/s', 'GFLOP/s', 'matmul GFLOP/s', '% matmul',
                 'act. peak MiB', 'weights MiB']


def _fmt(x: Optional[float], nd: int = 2) -> str:
    if x is None:
        return '-'
    return 'nan' if x != x else f'{x:.{nd}f}'


def collect_results(rows: Sequence[Dict], timings: Dict, machine: Dict) -> List[Dict]:
    """One JSON row per timed row; forwards get clips/s, FLOP/s and their share of the matmul rate."""
    results = []
    for i, row in enumerate(rows):
        info = row['info']
        label = 'bf16*' if (info['dtype'] == 'bf16' and machine['device'] == 'cpu'
                            and not machine['native_bf16']) else info['dtype']
        out = dict(info, dtype_label=label, **{f'time_{k}': v for k, v in timings[i].as_dict().items()
                                               if k != 'name'})
        if 'gflop' in info:
            out['gflops'] = info['gflop'] / (out['time_median_ms'] / 1e3)
        if 'peak_bytes' in row:
            out['act_peak_mib'] = row['peak_bytes'] / 2**20
        results.append(out)
    matmul = {(r['model'], r['budget'], r['dtype']): r for r in results if r['impl'] == 'matmul'}
    for r in results:
        if r['impl'] in FORWARDS:
            seconds = r['time_median_ms'] / 1e3
            r['clips_per_s'] = r['batch'] / seconds
            r['gflops'] = 2 * r['gmacs_clip'] * r['batch'] / seconds
            r['matmul_gflops'] = matmul[(r['model'], r['budget'], r['dtype'])]['gflops']
            r['matmul_frac'] = r['gflops'] / r['matmul_gflops']
            r.setdefault('act_peak_mib', None)
    return results


def table_rows(results: Sequence[Dict]) -> List[List[str]]:
    """The main table: one row per forward (FluxViT and MMAction2 ViT)."""
    return [[r['model'], r['budget'], r['dtype_label'], r['impl'], 'x'.join(map(str, r['grid'])),
             f"{r['gmacs_clip']:.4g}", _fmt(r['time_median_ms'], 1),
             f"{_fmt(r['time_p10_ms'], 1)}-{_fmt(r['time_p90_ms'], 1)}",
             f"{r['time_clean']}/{r['time_samples']}", _fmt(r['clips_per_s'], 3),
             _fmt(r['gflops'], 1), _fmt(r['matmul_gflops'], 1), _fmt(100 * r['matmul_frac'], 1),
             _fmt(r['act_peak_mib'], 0), _fmt(r['weights_mib'], 0)]
            for r in results if r['impl'] in FORWARDS]


def _ratio(r: Dict, name: str, value: float, unit: str, detail: str) -> Dict:
    return dict(model=r['model'], budget=r['budget'], dtype=r['dtype'], batch=r['batch'],
                dtype_label=r['dtype_label'], name=name, value=value, unit=unit, detail=detail)


def ratios_of(results: Sequence[Dict]) -> List[Dict]:
    """Measured ratios of every FluxViT row against what ran beside it in this run.

    Each ratio keeps the two measured numbers it divides (``detail``); no threshold
    is applied: reading them against a goal is the reader's business.
    """
    rows = {(r['impl'], r['model'], r['budget'], r['dtype']): r for r in results}
    out = []
    for r in results:
        if r['impl'] != 'fluxvit':
            continue
        vit = rows.get(('mmaction-vit', r['model'], r['budget'], r['dtype']))
        if vit is not None:
            out.append(_ratio(r, 'FluxViT / mmaction-ViT clips/s',
                              r['clips_per_s'] / vit['clips_per_s'], 'x',
                              f"{r['clips_per_s']:.3f} vs {vit['clips_per_s']:.3f} clips/s"))
        out.append(_ratio(r, 'FluxViT FLOP/s / matmul FLOP/s', r['matmul_frac'], '',
                          f"{r['gflops']:.4g} vs {r['matmul_gflops']:.4g} GFLOP/s"))
        fp = rows.get(('fluxvit', r['model'], r['budget'], 'fp32'))
        if r['dtype'] != 'fp32' and fp is not None:
            out.append(_ratio(r, 'bf16 / fp32 speed', r['clips_per_s'] / fp['clips_per_s'], 'x',
                              f"{r['clips_per_s']:.3f} vs {fp['clips_per_s']:.3f} clips/s"))
        sel = rows.get(('selector', r['model'], r['budget'], r['dtype']))
        if sel is not None:
            out.append(_ratio(r, 'selector share of forward',
                              sel['time_median_ms'] / r['time_median_ms'], '%',
                              f"{sel['time_median_ms']:.2f} ms of {r['time_median_ms']:.1f} ms"))
    return out


def ratio_line(ratio: Dict) -> str:
    """``ratio s@2048 fp32 b2: <name> = <value> (<the two numbers>)``."""
    value = (f"{100 * ratio['value']:.2f}%" if ratio['unit'] == '%'
             else f"{ratio['value']:.2f}{ratio['unit']}")
    return (f"ratio {ratio['model']}@{ratio['budget']} {ratio['dtype_label']} b{ratio['batch']}: "
            f"{ratio['name']} = {value} ({ratio['detail']})")


def cpu_lines(machine: Dict) -> List[str]:
    """The lines printed above every table."""
    lines = [f"# CPU: {machine['cpu_line']} | {machine['threads']} threads"]
    if machine['device'] == 'cpu' and not machine['native_bf16'] and 'bf16' in machine['dtypes']:
        lines.append('# bf16*: this CPU has no native bf16 (AVX512_BF16 / AMX); bf16 runs on '
                     + ("oneDNN's emulation" if machine['onednn_bf16'] else
                        'generic kernels (oneDNN has no bf16 here)')
                     + ', so a bf16 speed-up is not expected.')
    if machine['device'] == 'cuda':
        lines.append(f"# GPU: {machine.get('gpu')}")
    return lines


def main(argv=None):
    args = parse_args(argv)
    import torch
    from mmengine.registry import init_default_scope
    import mmflux  # noqa: F401
    from mmflux.utils.tables import markdown_table, text_table
    from mmflux.utils.timing import run_info, time_interleaved, torch_threads

    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda requested but CUDA is not available')
    init_default_scope('mmaction')
    torch.manual_seed(args.seed)
    with torch_threads(args.threads) as threads:
        machine = dict(run_info(threads, args.device), dtypes=list(args.dtype))
        print(f"# benchmark: batch {args.batch_size}, frame {args.size}x{args.size}, oversample "
              f"{args.oversample}, warmup {args.warmup}, repeats {args.repeats}")
        rows = build_rows(args)
        if not args.no_memory:
            for row in rows:
                if row['info']['impl'] in FORWARDS:
                    row['peak_bytes'] = peak_bytes(row['fn'], args.device)
        timings = time_interleaved({i: row['fn'] for i, row in enumerate(rows)},
                                   warmup=args.warmup, repeats=args.repeats, device=args.device)
    machine['load_avg_after'] = run_info(threads)['load_avg']
    results = collect_results(rows, timings, machine)
    ratios = ratios_of(results)
    head = '\n'.join(cpu_lines(machine))
    print(f'\n{head}\n' + text_table(TABLE_HEADERS, table_rows(results), left=4))
    print(f'\n{head}')
    for ratio in ratios:
        print(ratio_line(ratio))
    if any(r['time_clean'] < r['time_samples'] for r in results if r['impl'] in FORWARDS) \
            and args.device == 'cpu':
        print('# some samples ran while other processes used the CPU (clean < samples): '
              'the rows are interleaved, so ratios hold better than absolute times.')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(machine=machine, args=vars(args), results=results, ratios=ratios),
                      f, indent=2)
    if args.markdown:
        md_head = ''.join(f'{line[2:]}  \n' for line in cpu_lines(machine)) + '\n'
        with open(args.markdown, 'w') as f:
            f.write(md_head + markdown_table(TABLE_HEADERS, table_rows(results)) + '\n\n')
            f.write(md_head + ''.join(f'- {ratio_line(r)[6:]}\n' for r in ratios))
    return dict(machine=machine, results=results, ratios=ratios)


if __name__ == '__main__':
    main()
