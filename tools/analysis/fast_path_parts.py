"""Side-by-side: plain eager FluxViT-S vs each part of the oneDNN CPU fast path (issue 22, item 4).

Measures the fast path as it stood before it was cut down (mmflux.models.layers.onednn);
run at that commit. Variants, per dtype, token count and batch (interleaved rounds,
mmflux.utils.timing):
  eager          the fast path off (plain ATen ops: MKL/oneDNN inside ATen, SDPA)
  linear         oneDNN _linear_pointwise for every linear (GELU separate), SDPA attention
  linear+gelu    ... with fc1 + tanh-GELU fused into one oneDNN call
  attn           only the attention blocked over (batch, head) through oneDNN matmuls
  all            linear+gelu and blocked attention
"""
import argparse
import contextlib
import json
import sys

import torch
import torch.nn.functional as F


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument('--tokens', type=int, nargs='+', default=[2048, 1024])
    p.add_argument('--batches', type=int, nargs='+', default=[1, 2])
    p.add_argument('--dtypes', nargs='+', default=['fp32', 'bf16'])
    p.add_argument('--repeats', type=int, default=7)
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--json')
    args = p.parse_args(argv)
    from mmengine.registry import init_default_scope
    from mmaction.registry import MODELS
    import mmflux  # noqa: F401
    from mmflux.models.layers import onednn
    from mmflux.utils.timing import run_info, time_interleaved
    init_default_scope('mmaction')
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = MODELS.build(dict(type='FluxViT', arch='small')).eval()
    real_linear = onednn.linear
    fast = onednn.fast_dtypes()

    def unfused_linear(x, weight, bias=None, gelu=None):
        y = real_linear(x, weight, bias)
        return F.gelu(y, approximate=gelu) if gelu is not None else y

    def eager_linear(x, weight, bias=None, gelu=None):
        y = F.linear(x, weight, bias)
        return F.gelu(y, approximate=gelu) if gelu is not None else y

    @contextlib.contextmanager
    def variant(name, dt):
        saved = (onednn.linear, onednn.fast_dtypes, onednn.fast_attention_dtypes)
        onednn.linear = {'linear': unfused_linear, 'attn': eager_linear}.get(name, real_linear)
        onednn.fast_attention_dtypes = (lambda: frozenset({dt})) if name in ('attn', 'all') \
            else (lambda: frozenset())
        try:
            if name == 'eager':
                with onednn.disabled():
                    yield
            else:
                yield
        finally:
            onednn.linear, onednn.fast_dtypes, onednn.fast_attention_dtypes = saved

    dtypes = {'fp32': torch.float32, 'bf16': torch.bfloat16}
    calls, meta = {}, {}
    for dname in args.dtypes:
        dt = dtypes[dname]
        if dt not in fast:
            print(f'# {dname}: no fast path on this CPU ({sorted(map(str, fast))}); skipped')
            continue
        for tokens in args.tokens:
            frames = tokens // 256
            for batch in args.batches:
                x = torch.randn(batch, 3, frames, 224, 224)
                for name in ('eager', 'linear', 'linear+gelu', 'attn', 'all'):
                    def run(name=name, x=x, dt=dt, dname=dname, tokens=tokens):
                        with variant(name, dt), torch.inference_mode(), \
                                torch.autocast('cpu', dtype=torch.bfloat16, enabled=dname == 'bf16'):
                            return model(x, budget=tokens)
                    key = f'{dname} {tokens} b{batch} {name}'
                    calls[key] = run
                    meta[key] = dict(dtype=dname, tokens=tokens, batch=batch, variant=name)
    # what each variant runs (oneDNN calls in one forward) and that it matches eager
    real_op, counted = onednn._LINEAR_POINTWISE, []

    def spy(*a):
        counted.append(1)
        return real_op(*a)
    onednn._LINEAR_POINTWISE = spy
    checks = {}
    for key, fn in calls.items():
        del counted[:]
        out = fn().float()
        base_key = key.rsplit(' ', 1)[0] + ' eager'
        ref = checks[base_key][1] if base_key in checks else out
        checks[key] = (len(counted), out)
        meta[key].update(onednn_calls=len(counted),
                         rel_diff=((out - ref).norm() / ref.norm()).item())
        print(f"# {key}: {len(counted)} oneDNN calls, rel. diff to eager {meta[key]['rel_diff']:.1e}")
    onednn._LINEAR_POINTWISE = real_op
    del checks
    machine = run_info()
    print('#', machine['cpu_line'], '| threads', machine['threads'], '| load', machine['load_avg'])
    # the check above was the warm-up round; one timed round at a time, the report after each
    timings = {}
    for rnd in range(args.repeats):
        for key, t in time_interleaved(calls, warmup=0, repeats=1).items():
            if key in timings:
                timings[key].times_s += t.times_s
                timings[key].cpu_shares += t.cpu_shares
            else:
                timings[key] = t
        report(timings, meta, machine, args, rnd + 1)


def report(timings, meta, machine, args, rounds):
    rows = []
    print(f'# after {rounds} timed rounds', flush=True)
    for key, t in timings.items():
        m = meta[key]
        base = timings[f"{m['dtype']} {m['tokens']} b{m['batch']} eager"]
        ratios = sorted(b / f for b, f in zip(base.times_s, t.times_s))  # per-round eager/variant
        row = dict(m, **t.as_dict(), speedup_median=base.median_ms / t.median_ms,
                   speedup_per_round_median=ratios[len(ratios) // 2],
                   speedup_per_round_min=ratios[0], speedup_per_round_max=ratios[-1])
        rows.append(row)
        print(f"{key:28s} median {t.median_ms:8.1f} ms  p10-p90 {t.percentile(10):8.1f}-"
              f"{t.percentile(90):8.1f}  clean {t.clean}/{len(t.times_s)}  eager/this "
              f"{row['speedup_median']:.3f} (per round median {row['speedup_per_round_median']:.3f}, "
              f"{ratios[0]:.2f}..{ratios[-1]:.2f})", flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(machine=machine, argv=sys.argv[1:], rounds=rounds, rows=rows), f,
                      indent=1)


if __name__ == '__main__':
    main()
