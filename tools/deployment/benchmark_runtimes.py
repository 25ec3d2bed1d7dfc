#!/usr/bin/env python
"""Eager PyTorch, ONNX Runtime and OpenVINO at each precision on CPU, side by side in one run.

    python tools/deployment/benchmark_runtimes.py [--grid 8 224] [--budgets all 1024] \
        [--batch 1] [--iters 5] [--warmup 2] [--threads N] \
        [--tiny-checkpoint CKPT --data-root DIR [--calib-videos 50] [--tiny-limit N]] \
        [--markdown docs/benchmark/deployment_precision.md]

Speed (the same random FluxViT-S/14, configs/fluxvit/fluxvit-s14_k400.py, exported
ONCE for the grid, every budget run from that file):
``eager fp32`` (mmflux's default CPU path), ``eager bf16`` (autocast),
``onnxruntime fp32 / int8 / int8-dynamic`` and ``openvino fp32 / bf16 / int8``.
int8 is post-training static quantization of the weight matmuls (ONNX Runtime
``quantize_static``, OpenVINO NNCF), the patch embedding left in fp32 so the
selector keeps the same tokens; for the random S model its calibration clips are
the shared demo videos (speed does not depend on them). bf16 runs only where the
CPU has native bf16 (OpenVINO's CPU capabilities); elsewhere the row says fp32.

Every timed round runs every path once, in turn (interleaved), so background load
hits all alike; latency = median over rounds. GFLOP/s = 2 x MACs
(mmflux.utils.flops) x batch / latency; each row is divided by the matmul rate
of its own precision (fp32 and bf16 ``F.linear``, int8 ``torch._int_mm``) on the
model's linear-layer shapes, measured in the same run.

``--tiny-checkpoint`` (the trained tiny model, configs/fluxvit/fluxvit-tiny_synthetic.py):
top-1 of every precision on the synthetic test split (the config's test views,
grid and budget) and its agreement with the eager fp32 predictions; int8 is
calibrated on ``--calib-videos`` videos of the validation split, never the test split.
"""
import argparse
import contextlib
import json
import os
import os.path as osp
import shutil
import sys

import numpy as np
import torch
from mmengine.config import Config
from mmengine.utils import ProgressBar

import mmflux  # noqa: F401
from mmflux.deployment import build_recognizer, build_runtime_model, export_recognizer, video_views
from mmflux.deployment.export import onnx_to_openvino, sidecar_path
from mmflux.deployment.quantize import calibration_clips
from mmflux.deployment.runtime import openvino_has_native_bf16
from mmflux.evaluation import set_test_grid
from mmflux.compat import apply_dataset_overrides
from mmflux.utils.cpu_info import machine_info
from mmflux.utils.flops import count_macs
from mmflux.utils.timing import time_call, time_interleaved
from mmflux.utils.tables import markdown_table

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
S_CONFIG = osp.join(REPO, 'configs', 'fluxvit', 'fluxvit-s14_k400.py')
TINY_CONFIG = osp.join(REPO, 'configs', 'fluxvit', 'fluxvit-tiny_synthetic.py')
SHARED = os.environ.get('MMFLUX_SHARED_DIR', osp.join(osp.dirname(REPO), 'shared'))
#: (runtime, precision) of every row, in table order
PATHS = (('eager', 'fp32'), ('eager', 'bf16'), ('onnxruntime', 'fp32'), ('onnxruntime', 'int8'),
         ('onnxruntime', 'int8-dynamic'), ('openvino', 'fp32'), ('openvino', 'bf16'),
         ('openvino', 'int8'))


def cpu_info(threads):
    """The machine (mmflux.utils.cpu_info) plus whether OpenVINO's CPU plugin has native bf16."""
    info = machine_info()
    info.update(threads=threads, openvino_native_bf16=openvino_has_native_bf16())
    return info


def matmul_rates(shapes, iters=3):
    """GFLOP/s of fp32 / bf16 ``F.linear`` and int8 ``torch._int_mm`` on ``(rows, in, out)``."""
    flops = sum(2 * r * i * o for r, i, o in shapes)
    gen = torch.Generator().manual_seed(0)
    calls = {}
    for dtype in (torch.float32, torch.bfloat16):
        ts = [(torch.randn(r, i, generator=gen).to(dtype), torch.randn(o, i, generator=gen).to(dtype))
              for r, i, o in shapes]
        calls['fp32' if dtype == torch.float32 else 'bf16'] = \
            (lambda ts: lambda: [torch.nn.functional.linear(x, w) for x, w in ts])(ts)
    ints = [(torch.randint(-128, 127, (max(r, 17), i), dtype=torch.int8, generator=gen),
             torch.randint(-128, 127, (i, o), dtype=torch.int8, generator=gen)) for r, i, o in shapes]
    calls['int8'] = lambda: [torch._int_mm(x, w) for x, w in ints]
    with torch.inference_mode():
        rates = {name: flops / (time_call(fn, warmup=1, repeats=iters).min_ms / 1e3) / 1e9
                 for name, fn in calls.items()}
    return rates


def export_all(config, checkpoint, frames, side, work_dir, calibration, tag):
    """One file per (runtime, file precision) for the grid; returns {(runtime, precision): path}."""
    base = osp.join(work_dir, f'{tag}_{frames}x{side}')
    files = {('onnxruntime', 'fp32'): base + '.onnx', ('onnxruntime', 'int8'): base + '_int8.onnx',
             ('onnxruntime', 'int8-dynamic'): base + '_int8dyn.onnx',
             ('openvino', 'fp32'): base + '.xml', ('openvino', 'int8'): base + '_int8.xml'}
    for (runtime, precision), path in files.items():
        if osp.isfile(path) and osp.isfile(sidecar_path(path)):
            continue
        if (runtime, precision) == ('openvino', 'fp32'):  # converted from the fp32 ONNX file
            onnx_to_openvino(files[('onnxruntime', 'fp32')], path)
            shutil.copy(sidecar_path(files[('onnxruntime', 'fp32')]), sidecar_path(path))
            continue
        export_recognizer(config, checkpoint, frames, side, None,
                          'onnx' if runtime == 'onnxruntime' else 'openvino', path,
                          precision=precision, check=False,
                          calibration=calibration if precision == 'int8' else None)
    files[('openvino', 'bf16')] = files[('openvino', 'fp32')]  # bf16 is a compile-time choice
    return files


def runtimes_for(files, threads):
    return {key: build_runtime_model(path, num_threads=threads, precision=key[1])
            for key, path in files.items()}


@contextlib.contextmanager
def eager_precision(precision):
    with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16,
                                                enabled=precision == 'bf16'):
        yield


def speed(args, threads, info):
    frames, side = args.grid
    work = args.work_dir
    ckpt = osp.join(work, 's_random.pth')
    if not osp.isfile(ckpt):
        torch.manual_seed(0)
        _, model = build_recognizer(S_CONFIG, None, frames, side)
        torch.save(dict(state_dict=model.state_dict()), ckpt)
    cfg, model = build_recognizer(S_CONFIG, ckpt, frames, side)
    views = [video_views(cfg, osp.join(SHARED, 'data', v)) for v in ('demo.mp4', 'test.mp4')]
    calibration = list(torch.cat(views)[:2].split(1))  # speed only: two clips are enough
    runtimes = runtimes_for(export_all(S_CONFIG, ckpt, frames, side, work, calibration, 's'), threads)
    backbone = model.backbone
    results = []
    for text in args.budgets:
        budget = None if text == 'all' else int(text)
        macs = count_macs(model, frames, side, side, budget=budget)
        rows = args.batch * (macs['tokens'] + 1)
        dim, hidden = backbone.embed_dims, backbone.blocks[0].mlp.fc1.out_features
        rates = matmul_rates([(rows, dim, 3 * dim), (rows, dim, dim), (rows, dim, hidden),
                              (rows, hidden, dim)])
        x = torch.randn(args.batch, 3, frames, side, side, generator=torch.Generator().manual_seed(1))
        calls = {}
        for runtime, precision in PATHS:
            if runtime == 'eager':
                calls[(runtime, precision)] = (lambda p: lambda: _eager(model, x, budget, p))(precision)
            else:
                rt = runtimes[(runtime, precision)]
                calls[(runtime, precision)] = (lambda rt: lambda: rt(x, budget))(rt)
        # the one timing harness: interleaved rounds, so background load hits every path alike
        timings = time_interleaved({f'{r} {p}': fn for (r, p), fn in calls.items()},
                                   warmup=args.warmup, repeats=args.iters, threads=threads)
        for (runtime, precision) in calls:
            timing = timings[f'{runtime} {precision}']
            r = dict(latency_ms=timing.median_ms, best_ms=timing.min_ms)
            ran = runtimes[(runtime, precision)].precision if runtime != 'eager' else precision
            rate_key = 'int8' if ran.startswith('int8') else ran
            gflops = 2 * macs['gmacs'] * args.batch / (r['latency_ms'] / 1e3)
            results.append(dict(budget=text, tokens=macs['tokens'], runtime=runtime,
                                precision=precision, ran=ran, **r, gflops=gflops,
                                clips_per_s=args.batch / (r['latency_ms'] / 1e3),
                                matmul_gflops=rates[rate_key], matmul_rates=rates))
    return results


def _eager(model, x, budget, precision):
    with eager_precision(precision):
        return model.extract_feat(x, stage='head', budget=budget)


def tiny_accuracy(args, threads):
    """top-1 per (runtime, precision) on the test split and agreement with eager fp32."""
    from mmaction.apis import init_recognizer
    cfg = Config.fromfile(TINY_CONFIG)
    options = dict(data_root=args.data_root)
    cfg.merge_from_dict(options)
    apply_dataset_overrides(cfg, options)
    frames, side, budget = cfg.test_frames, cfg.test_side, cfg.test_budget
    calib_cfg = cfg.copy()
    set_test_grid(calib_cfg, frames, side)
    calibration = calibration_clips(calib_cfg, 'val', args.calib_videos)
    work = osp.join(args.work_dir, 'tiny')
    os.makedirs(work, exist_ok=True)
    runtimes = runtimes_for(export_all(cfg, args.tiny_checkpoint, frames, side, work, calibration,
                                       'tiny'), threads)
    model = init_recognizer(cfg, args.tiny_checkpoint, device='cpu')
    head = model.cls_head
    ann = cfg.test_dataloader.dataset.ann_file
    root = cfg.test_dataloader.dataset.data_prefix['video']
    with open(ann) as f:
        items = [line.split() for line in f if line.strip()][:args.tiny_limit]
    preds = {key: [] for key in PATHS}
    labels = []
    bar = ProgressBar(len(items))
    for name, label in items:
        # one decode per video; every path sees the same views, averaged by the head's rule
        views = video_views(cfg, osp.join(root, name))
        labels.append(int(label))
        for runtime, precision in PATHS:
            if runtime == 'eager':
                with eager_precision(precision):
                    logits, _ = model.extract_feat(views, stage='head', budget=budget)
                logits = logits.float()
            else:
                logits = torch.from_numpy(runtimes[(runtime, precision)](views, budget)[0])
            score = head.average_clip(logits, num_segs=views.shape[0])
            preds[(runtime, precision)].append(int(score.reshape(-1).argmax()))
        bar.update()
    print()
    labels = np.array(labels)
    ref = np.array(preds[('eager', 'fp32')])
    out = {}
    for key, p in preds.items():
        p = np.array(p)
        out[key] = dict(top1=float((p == labels).mean()), agree_fp32=float((p == ref).mean()),
                        ran=runtimes[key].precision if key[0] != 'eager' else key[1])
    return dict(videos=len(items), grid=f'{frames}x{side}', budget=budget,
                calibration=f'{args.calib_videos} videos of the val split '
                            f'({sum(len(c) for c in calibration)} clips)', results=out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--grid', type=int, nargs=2, default=[8, 224], metavar=('FRAMES', 'SIDE'))
    p.add_argument('--budgets', nargs='*', default=['all', '1024'],
                   help='budgets run from the one exported file ("all": every token); none: '
                   'only the --tiny-checkpoint accuracy')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--threads', type=int, default=None, help='threads for all paths (default: torch)')
    p.add_argument('--work-dir', default='work_dirs/deploy_bench')
    p.add_argument('--tiny-checkpoint')
    p.add_argument('--data-root', default='data/synthetic_motion')
    p.add_argument('--calib-videos', type=int, default=50, help='val videos calibrating int8')
    p.add_argument('--tiny-limit', type=int, default=None, help='first N test videos only')
    p.add_argument('--markdown')
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = args.threads or torch.get_num_threads()
    os.makedirs(args.work_dir, exist_ok=True)
    info = cpu_info(threads)
    results = speed(args, threads, info) if args.budgets else []
    accuracy = tiny_accuracy(args, threads) if args.tiny_checkpoint else None
    lines = [f"CPU: {info['cpu_line']} | OpenVINO native bf16: {info['openvino_native_bf16']} | "
             f"threads: {threads} | load average at start: {info['load_avg']}",
             f"torch {torch.__version__}; command: python tools/deployment/{osp.basename(__file__)} "
             + ' '.join(sys.argv[1:] if argv is None else argv), '']
    if results:
        rates = results[0]['matmul_rates']
        lines.append(f"FluxViT-S/14 (random weights), {args.grid[0]}x{args.grid[1]}, one exported "
                     f"file per runtime and precision, batch {args.batch}; matmul rates on the "
                     f"model's linear shapes: " + ', '.join(f'{k} {v:.0f} GFLOP/s'
                                                             for k, v in rates.items()))
        lines.append('')
        headers = ['budget', 'kept tokens', 'runtime', 'precision (ran)', 'clips/s',
                   'latency median ms', 'best ms', 'GFLOP/s', '/ matmul rate of its precision']
        lines.append(markdown_table(headers, [
            [r['budget'], r['tokens'], r['runtime'], r['precision'] + ('' if r['ran'] == r['precision']
                                                                        else f" ({r['ran']})"),
             f"{r['clips_per_s']:.2f}", f"{r['latency_ms']:.0f}", f"{r['best_ms']:.0f}",
             f"{r['gflops']:.0f}", f"{r['gflops'] / r['matmul_gflops']:.2f}"] for r in results]))
    if accuracy:
        lines += ['', f"Tiny model top-1 on the synthetic test split ({accuracy['videos']} videos, "
                      f"{accuracy['grid']} at budget {accuracy['budget']}, the config's test views; "
                      f"int8 calibrated on {accuracy['calibration']}):", '']
        lines.append(markdown_table(['runtime', 'precision (ran)', 'top-1', 'same prediction as eager fp32'], [
            [k[0], k[1] + ('' if v['ran'] == k[1] else f" ({v['ran']})"), f"{100 * v['top1']:.2f}%",
             f"{100 * v['agree_fp32']:.1f}%"] for k, v in accuracy['results'].items()]))
    table = '\n'.join(lines)
    print(table)
    with open(osp.join(args.work_dir, 'benchmark_runtimes.json'), 'w') as f:
        json.dump(dict(info=info, results=results, accuracy=accuracy and dict(
            accuracy, results={f'{k[0]} {k[1]}': v for k, v in accuracy['results'].items()})),
            f, indent=1)
    if args.markdown:
        with open(args.markdown, 'w') as f:
            f.write(table + '\n')


if __name__ == '__main__':
    main()
