#!/usr/bin/env python
"""Eager PyTorch vs ONNX Runtime vs OpenVINO for FluxViT-S on CPU, side by side in one run.

    python tools/deployment/benchmark_runtimes.py [--cases 8x224@all 8x224@1024] \
        [--batches 1 2] [--iters 5] [--warmup 3] [--threads N] \
        [--tiny-checkpoint CKPT] [--markdown docs/benchmark/deployment_cpu.md]

Paths (the same random FluxViT-S/14, configs/fluxvit/fluxvit-s14_k400.py, per case):
``eager`` (mmflux's CPU fast path: oneDNN matmuls), ``eager-plain`` (the fast path
off, ATen/MKL ops), ``onnxruntime`` and ``openvino`` (fp32, exported by
tools/deployment/export.py's code) and ``onnxruntime-int8`` (dynamic int8 matmuls).
Case ``FxS@B``: a FRAMES x S clip, B patch tokens kept (``all``: no selection);
8x224 = 8 x 16 x 16 = 2048 tokens, so ``8x224@all`` is S@2048 and ``8x224@1024``
is S@1024 with the selector dropping half.

Every timed round runs every path once, in turn (interleaved), so background
load hits all alike; latency = median over rounds; clips/s = batch / latency.
Peak memory: extra resident memory of one forward (Linux VmHWM after resetting it
through /proc/self/clear_refs, minus VmRSS before), which sees the runtimes' own
allocations. GFLOP/s = 2 x MACs (mmflux.utils.flops) x batch / latency, against
the machine's oneDNN fp32 matmul rate on the model's linear-layer shapes,
measured in the same run.

``--tiny-checkpoint``: also the top-1 change of int8 on the synthetic test split
(data/synthetic_motion, tools/generate_synthetic_data.py) for the trained tiny
model (configs/fluxvit/fluxvit-tiny_synthetic.py), eager vs ORT fp32 vs ORT int8.
"""
import argparse
import contextlib
import json
import os
import os.path as osp
import platform
import statistics
import sys
import time

import torch
from mmengine.utils import ProgressBar

import mmflux  # noqa: F401
from mmflux.deployment import (build_recognizer, build_runtime_model, export_recognizer,
                               inference_exported)
from mmflux.deployment.export import quantize_onnx_dynamic, sidecar_path
from mmflux.deployment.exportable import ExportableRecognizer
from mmflux.models.layers import onednn
from mmflux.utils.flops import count_macs
from mmflux.utils.tables import markdown_table

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
S_CONFIG = osp.join(REPO, 'configs', 'fluxvit', 'fluxvit-s14_k400.py')
TINY_CONFIG = osp.join(REPO, 'configs', 'fluxvit', 'fluxvit-tiny_synthetic.py')


def cpu_info():
    model, flags = platform.processor(), set()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                elif line.startswith('flags'):
                    flags = set(line.split(':', 1)[1].split())
                    break
    except OSError:
        pass
    isa = [name for name, flag in (('AVX2', 'avx2'), ('AVX-512', 'avx512f'),
                                   ('AVX512_BF16', 'avx512_bf16'), ('AMX', 'amx_tile')) if flag in flags]
    return dict(cpu=model, isa=isa, torch_cpu_capability=torch.backends.cpu.get_cpu_capability(),
                threads=torch.get_num_threads(), logical_cpus=os.cpu_count(),
                load_avg=os.getloadavg()[0])


@contextlib.contextmanager
def fast_path_off():
    """Eager without the oneDNN fast path (``onednn.disabled()`` where it exists)."""
    if hasattr(onednn, 'disabled'):
        with onednn.disabled():
            yield
        return
    saved, onednn._LINEAR_POINTWISE = onednn._LINEAR_POINTWISE, None
    try:
        yield
    finally:
        onednn._LINEAR_POINTWISE = saved


def _status(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024.0  # MiB
    return float('nan')


def peak_extra_mib(fn):
    """Extra resident memory of ``fn()`` (VmHWM reset, then minus VmRSS before)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        fn()
        return float('nan')
    before = _status('VmRSS')
    fn()
    return _status('VmHWM') - before


def onednn_matmul_gflops(shapes, iters=3):
    """fp32 GFLOP/s of oneDNN matmuls (and of F.linear / MKL) on ``(rows, in, out)`` shapes."""
    op = getattr(torch.ops.mkldnn, '_linear_pointwise', None)
    out = {}
    tensors = [(torch.randn(r, i), torch.randn(o, i), torch.randn(o)) for r, i, o in shapes]
    flops = sum(2 * r * i * o for r, i, o in shapes)
    paths = {'F.linear': lambda x, w, b: torch.nn.functional.linear(x, w, b)}
    if op is not None:
        paths['oneDNN'] = lambda x, w, b: op(x, w, b, 'none', [], None)
    with torch.inference_mode():
        for name, fn in paths.items():
            for x, w, b in tensors:
                fn(x, w, b)
            best = float('inf')
            for _ in range(iters):
                t = time.perf_counter()
                for x, w, b in tensors:
                    fn(x, w, b)
                best = min(best, time.perf_counter() - t)
            out[name] = flops / best / 1e9
    return out


def build_paths(config, case, work_dir, threads):
    frames, side, budget = case
    tag = f'{frames}x{side}_{budget or "all"}'
    name = osp.splitext(osp.basename(config))[0]
    onnx_path = osp.join(work_dir, f'{name}_{tag}.onnx')
    xml_path = osp.join(work_dir, f'{name}_{tag}.xml')
    int8_path = osp.join(work_dir, f'{name}_{tag}_int8.onnx')
    ckpt = osp.join(work_dir, f'{name}_random.pth')
    if not osp.isfile(ckpt):
        torch.manual_seed(0)
        _, model = build_recognizer(config, None, frames, side, budget)
        torch.save(dict(state_dict=model.state_dict()), ckpt)
    cfg, model = build_recognizer(config, ckpt, frames, side, budget)
    if not osp.isfile(onnx_path):
        export_recognizer(config, ckpt, frames, side, budget, 'onnx', onnx_path, check=False)
    if not osp.isfile(xml_path):
        from mmflux.deployment.export import onnx_to_openvino
        import shutil
        onnx_to_openvino(onnx_path, xml_path)
        shutil.copy(sidecar_path(onnx_path), sidecar_path(xml_path))
    if not osp.isfile(int8_path):
        quantize_onnx_dynamic(onnx_path, int8_path)
        with open(sidecar_path(onnx_path)) as f:
            meta = json.load(f)
        meta['precision'] = 'int8-dynamic'
        with open(sidecar_path(int8_path), 'w') as f:
            json.dump(meta, f, indent=1)
    module = ExportableRecognizer(model, frames, side, budget).eval()
    macs = count_macs(model, frames, side, side, budget=budget)
    paths = {}

    def eager(x):
        with torch.inference_mode():
            return module(x)
    eager.module = module

    def eager_plain(x):
        with fast_path_off(), torch.inference_mode():
            return module(x)

    paths['eager'] = eager
    paths['eager-plain'] = eager_plain
    for name, path in (('onnxruntime', onnx_path), ('openvino', xml_path),
                       ('onnxruntime-int8', int8_path)):
        runtime = build_runtime_model(path, num_threads=threads)
        paths[name] = (lambda rt: (lambda x: rt(x.numpy())))(runtime)
    lin_rows = macs['tokens'] + 1
    return paths, macs, lin_rows, ckpt


def time_case(paths, batch, case, warmup, iters):
    frames, side, _ = case
    x = torch.randn(batch, 3, frames, side, side, generator=torch.Generator().manual_seed(1))
    memory, times = {}, {name: [] for name in paths}
    for name, fn in paths.items():  # warm-up round, with the memory peak
        memory[name] = peak_extra_mib(lambda: fn(x))
    for _ in range(warmup - 1):
        for fn in paths.values():
            fn(x)
    for _ in range(iters):
        for name, fn in paths.items():
            t = time.perf_counter()
            fn(x)
            times[name].append(time.perf_counter() - t)
    return {name: dict(latency_ms=1e3 * statistics.median(ts), best_ms=1e3 * min(ts),
                       peak_mib=memory[name]) for name, ts in times.items()}


def tiny_accuracy(checkpoint, work_dir, data_root='data/synthetic_motion', limit=None):
    """top-1 on the synthetic test split: eager vs ORT fp32 vs ORT int8 (the config's test views)."""
    from mmengine.config import Config
    from mmaction.apis import inference_recognizer, init_recognizer
    cfg = Config.fromfile(TINY_CONFIG)
    frames, side, budget = cfg.test_frames, cfg.test_side, cfg.test_budget
    onnx_path = osp.join(work_dir, 'tiny.onnx')
    int8_path = osp.join(work_dir, 'tiny_int8.onnx')
    export_recognizer(TINY_CONFIG, checkpoint, frames, side, budget, 'onnx', onnx_path, check=False)
    export_recognizer(TINY_CONFIG, checkpoint, frames, side, budget, 'onnx', int8_path, int8=True,
                      check=False)
    model = init_recognizer(cfg, checkpoint, device='cpu')
    with open(osp.join(data_root, 'test.txt')) as f:
        items = [line.split() for line in f if line.strip()][:limit]
    fp32, int8 = build_runtime_model(onnx_path), build_runtime_model(int8_path)
    hits = dict(eager=0, onnxruntime=0, **{'onnxruntime-int8': 0})
    agree = 0
    bar = ProgressBar(len(items))
    for name, label in items:
        video = osp.join(data_root, 'videos', name)
        label = int(label)
        pred = dict(eager=int(inference_recognizer(model, video).pred_score.argmax()),
                    onnxruntime=int(inference_exported(fp32, video)['pred_score'].argmax()),
                    **{'onnxruntime-int8': int(inference_exported(int8, video)['pred_score'].argmax())})
        for key in hits:
            hits[key] += int(pred[key] == label)
        agree += int(pred['onnxruntime-int8'] == pred['onnxruntime'])
        bar.update()
    print()
    n = len(items)
    return dict(videos=n, grid=f'{frames}x{side}', budget=budget,
                top1={k: v / n for k, v in hits.items()}, int8_agrees_with_fp32=agree / n)


def parse_case(text):
    grid, budget = text.split('@')
    frames, side = (int(v) for v in grid.split('x'))
    return frames, side, None if budget == 'all' else int(budget)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--cases', nargs='*', default=['8x224@all', '8x224@1024'],
                   help='FRAMESxSIDE@BUDGET; none: only the --tiny-checkpoint accuracy')
    p.add_argument('--config', default=S_CONFIG, help='model config (default FluxViT-S/14 K400)')
    p.add_argument('--batches', type=int, nargs='+', default=[1, 2])
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--warmup', type=int, default=3,
                   help='untimed rounds (eager needs a few: its first calls are slow)')
    p.add_argument('--threads', type=int, default=None, help='threads for all paths (default: torch)')
    p.add_argument('--work-dir', default='work_dirs/deploy_bench')
    p.add_argument('--tiny-checkpoint')
    p.add_argument('--tiny-limit', type=int, default=None, help='first N test videos only')
    p.add_argument('--markdown')
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = args.threads or torch.get_num_threads()
    os.makedirs(args.work_dir, exist_ok=True)
    info = cpu_info()
    info['threads'] = threads
    results = []
    gemm = {}
    for text in args.cases:
        case = parse_case(text)
        paths, macs, rows, _ = build_paths(args.config, case, args.work_dir, threads)
        backbone = paths['eager'].module.backbone
        dim = backbone.embed_dims
        hidden = backbone.blocks[0].mlp.fc1.out_features
        for batch in args.batches:
            shapes = [(batch * rows, dim, 3 * dim), (batch * rows, dim, dim),
                      (batch * rows, dim, hidden), (batch * rows, hidden, dim)]
            gemm[(text, batch)] = onednn_matmul_gflops(shapes)
            timed = time_case(paths, batch, case, args.warmup, args.iters)
            for name, r in timed.items():
                gflops = 2 * macs['gmacs'] * batch / (r['latency_ms'] / 1e3)
                results.append(dict(case=text, tokens=macs['tokens'], batch=batch, path=name,
                                    clips_per_s=batch / (r['latency_ms'] / 1e3), **r,
                                    gflops=gflops, onednn_gflops=gemm[(text, batch)].get('oneDNN'),
                                    mkl_gflops=gemm[(text, batch)]['F.linear'],
                                    gmacs_per_clip=macs['gmacs']))
    accuracy = tiny_accuracy(args.tiny_checkpoint, args.work_dir, limit=args.tiny_limit) \
        if args.tiny_checkpoint else None
    lines = [f"CPU: {info['cpu']} | ISA: {', '.join(info['isa']) or 'none of AVX2/AVX-512/AMX'} | "
             f"torch CPU capability: {info['torch_cpu_capability']} | threads: {threads} of "
             f"{info['logical_cpus']} logical CPUs | load average at start: {info['load_avg']:.1f}",
             f"torch {torch.__version__}; command: python tools/deployment/{osp.basename(__file__)} "
             + ' '.join(sys.argv[1:] if argv is None else argv), '']
    headers = ['case', 'kept tokens', 'batch', 'path', 'clips/s', 'latency median ms', 'best ms',
               'peak extra MiB', 'GFLOP/s', '/ oneDNN fp32 matmul GFLOP/s']
    rows = []
    for r in results:
        ratio = r['gflops'] / r['onednn_gflops'] if r['onednn_gflops'] else float('nan')
        rows.append([r['case'], r['tokens'], r['batch'], r['path'], f"{r['clips_per_s']:.2f}",
                     f"{r['latency_ms']:.0f}", f"{r['best_ms']:.0f}", f"{r['peak_mib']:.0f}",
                     f"{r['gflops']:.0f}",
                     f"{ratio:.2f} (of {r['onednn_gflops']:.0f}; MKL F.linear {r['mkl_gflops']:.0f})"])
    lines.append(markdown_table(headers, rows))
    if accuracy:
        lines += ['', f"int8 top-1 on the synthetic test split ({accuracy['videos']} videos, tiny model, "
                      f"{accuracy['grid']} at budget {accuracy['budget']}, the config's test views): "
                      + ', '.join(f'{k} {v:.4f}' for k, v in accuracy['top1'].items())
                      + f"; int8 prediction = fp32 prediction on {accuracy['int8_agrees_with_fp32']:.4f}"]
    table = '\n'.join(lines)
    print(table)
    with open(osp.join(args.work_dir, 'benchmark_runtimes.json'), 'w') as f:
        json.dump(dict(info=info, results=results, accuracy=accuracy), f, indent=1)
    if args.markdown:
        with open(args.markdown, 'w') as f:
            f.write(table + '\n')


if __name__ == '__main__':
    main()
