#!/usr/bin/env python
"""Where a training step's time goes on this CPU: data loading against the model's
step, and the step split into GEMM, attention, elementwise, normalisation and
optimizer time.

    python tools/profile_training.py [CONFIG] [--steps 8] [--warmup 2] [--threads N]
                                     [--cfg-options KEY=VALUE ...] [--json OUT]

The main job's time differs a lot between CPUs (15 min on a Xeon with AVX-512/AMX,
23.5 min on an AMD EPYC Zen 3 with AVX2 only, 50 min reported on a 2-core Zen 2;
docs/main_job_time.md). This script measures,
in one run on the machine at hand, the two things that decide it:

* ``data``: real batches drawn from the config's train dataloader (its workers,
  Flux grids and augmentations), timed per batch after the workers have started;
* ``step``: ``model.train_step`` on those batches (preprocessing, forward, the
  Flux-Multi loss, backward, optimizer), first timed plainly, then under
  ``torch.profiler`` to split the step's CPU time by operator family.

With ``num_workers > 0`` loading overlaps the step, so training runs at about
``max(data, step)`` per iteration; the printed ratio says which one bounds it. The
op-family shares say where a faster kernel would pay (e.g. GEMM share on an AVX2
CPU vs an AVX-512 one). No targets: it reports what it measured.
"""
import argparse
import json
import os.path as osp
import time
from collections import defaultdict

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = osp.join(ROOT, 'configs', 'fluxvit', 'fluxvit-tiny_synthetic.py')

#: operator families, by the first matching name fragment (ATen op names)
FAMILIES = (
    ('attention', ('scaled_dot_product', 'flash_attention', 'softmax')),
    ('GEMM', ('aten::mm', 'aten::addmm', 'aten::bmm', 'aten::matmul', 'aten::linear',
              'mkldnn', 'convolution')),
    ('normalisation', ('norm', 'rsqrt')),
    ('optimizer', ('Optimizer.', '_foreach', 'addcmul', 'addcdiv', 'lerp')),
    ('elementwise', ('aten::mul', 'aten::add', 'aten::sub', 'aten::div', 'aten::pow',
                     'gelu', 'aten::sum', 'aten::mean', 'aten::copy_', 'aten::fill_',
                     'aten::clamp', 'aten::exp', 'aten::where', 'aten::cat', 'aten::index',
                     'gather', 'scatter', 'aten::topk', 'aten::sort')),
)


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', nargs='?', default=DEFAULT_CONFIG)
    p.add_argument('--steps', type=int, default=8, help='timed batches / steps')
    p.add_argument('--warmup', type=int, default=2, help='untimed steps first')
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    p.add_argument('--json', default=None, help='also write the figures here')
    return p.parse_args(argv)


def family(name: str) -> str:
    for fam, fragments in FAMILIES:
        if any(f in name for f in fragments):
            return fam
    return 'other'


def build(cfg):
    """The model, its optimizer wrapper and the train dataloader, as training builds them."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from mmaction.registry import MODELS
    from mmflux.datasets.flux_batch_sampler import with_backbone_geometry
    init_default_scope('mmaction')
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    loader_cfg = dict(cfg.train_dataloader)
    if isinstance(loader_cfg.get('batch_sampler'), dict):
        loader_cfg['batch_sampler'] = with_backbone_geometry(loader_cfg['batch_sampler'], model.backbone)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    return model, optim_wrapper, loader


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch
    from mmengine.config import Config
    from mmengine.logging import MMLogger, print_log
    from torch.profiler import ProfilerActivity, profile

    import mmflux  # noqa: F401  (registers the components)
    from mmflux.utils.cpu_info import describe_cpu
    from mmflux.compat import apply_dataset_overrides
    from mmflux.utils.tables import markdown_table
    MMLogger.get_instance('mmflux', log_level='INFO')
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
        apply_dataset_overrides(cfg, args.cfg_options)  # data_root=, num_classes= ...
    model, optim_wrapper, loader = build(cfg)

    batches, data_times = [], []
    it = iter(loader)
    batches.append(next(it))  # the workers start here: not timed
    for _ in range(args.warmup + args.steps - 1):
        t0 = time.perf_counter()
        batches.append(next(it))
        data_times.append(time.perf_counter() - t0)
    del it

    def step(batch):
        model.train_step(batch, optim_wrapper)

    for batch in batches[:args.warmup]:
        step(batch)
    timed = batches[args.warmup:]
    t0 = time.perf_counter()
    for batch in timed:
        step(batch)
    step_s = (time.perf_counter() - t0) / len(timed)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in timed:
            step(batch)
    shares = defaultdict(float)
    for event in prof.key_averages():
        shares[family(event.key)] += event.self_cpu_time_total
    total = sum(shares.values()) or 1.0

    data_s = sum(data_times) / max(1, len(data_times))
    workers = cfg.train_dataloader.get('num_workers', 0)
    grids = sorted({tuple(b['inputs'][0].shape[-3:-1]) for b in timed})
    result = dict(cpu=describe_cpu(), threads=torch.get_num_threads(), workers=workers,
                  batch_size=cfg.train_dataloader.batch_size, steps=len(timed),
                  grids=[f'{t}x{s}' for t, s in grids], data_ms=1e3 * data_s, step_ms=1e3 * step_s,
                  families={k: v / total for k, v in shares.items()})
    rows = [[fam, f'{100 * share:.1f}%', f'{1e3 * step_s * share:.0f}']
            for fam, share in sorted(result['families'].items(), key=lambda kv: -kv[1])]
    bound = 'data loading' if data_s > step_s else 'the model step'
    lines = [f'CPU: {result["cpu"]}; {result["threads"]} torch threads, {workers} loader workers, '
             f'batch {result["batch_size"]}, Flux grids (frames x side) {", ".join(result["grids"])}',
             f'data {1e3 * data_s:.0f} ms per batch, step {1e3 * step_s:.0f} ms: data / step = '
             f'{data_s / step_s:.2f}, so training is bound by {bound}', '',
             markdown_table(['operator family', 'share of step CPU time', 'ms per step'], rows)]
    print_log('\n'.join(lines), logger='current')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
