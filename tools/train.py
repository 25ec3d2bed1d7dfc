#!/usr/bin/env python
"""Train an mmflux (MMAction2) config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--seed N]
                          [--cfg-options key=value ...] [--launcher pytorch|slurm]

Same flags as MMAction2's tools/train.py. ``--amp`` trains under bf16 autocast on
CPU or GPU. ``--resume`` without a path continues from the latest checkpoint in
the work dir; the Flux sampler then continues the interrupted epoch with the same
batches and grids; a missing, empty or truncated checkpoint is reported and the
newest complete one taken instead (docs/robustness.md). Resuming unpickles
optimizer and logger state: see docs/checkpoints.md for what is trusted. A
second run on a work dir in use is refused.
"""
import argparse
import contextlib
import os
import os.path as osp
import sys

import mmflux  # noqa: F401  (applies upstream workarounds before anything runs)
from mmflux.compat import adapt_distributed_cfg, apply_dataset_overrides, use_zero_redundancy
from mmengine.config import Config, DictAction
from mmaction.registry import RUNNERS
from mmengine.runner import Runner

from mmflux.datasets import AnnotationError
from mmflux.engine.runner.checkpoint_files import CheckpointWriteError
from mmflux.engine.runner.flux_runner import CheckpointResumeError
from mmflux.engine.runner.work_dir_lock import WorkDirBusyError, WorkDirLock
from mmflux.engine.config_check import check_flux_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a recognizer with mmflux')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true', help='bf16 autocast training')
    parser.add_argument('--zero', action='store_true',
                        help='ZeRO-1: shard optimizer states across ranks (distributed only)')
    parser.add_argument('--no-validate', action='store_true', help='skip validation during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the real batch size (auto_scale_lr in the config)')
    parser.add_argument('--seed', type=int, default=None, help='random seed')
    parser.add_argument('--diff-rank-seed', action='store_true', help='different seed per rank')
    parser.add_argument('--deterministic', action='store_true', help='deterministic cuDNN')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. model.test_cfg.token_budget=1024')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def merge_args(cfg: Config, args) -> Config:
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
        apply_dataset_overrides(cfg, args.cfg_options)  # data_root=, num_classes= ...
    cfg.launcher = args.launcher
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.amp:
        cfg.optim_wrapper.type = 'AutocastOptimWrapper'
        cfg.optim_wrapper.dtype = 'bfloat16'
    if args.zero:
        if args.launcher == 'none':
            raise SystemExit('--zero shards optimizer states across ranks: use it with a launcher '
                             '(tools/dist_train.sh or --launcher pytorch|slurm).')
        use_zero_redundancy(cfg)
    adapt_distributed_cfg(cfg, args.launcher)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.setdefault('auto_scale_lr', dict(base_batch_size=256))
        cfg.auto_scale_lr.enable = True
    randomness = cfg.get('randomness') or {}
    if args.seed is not None:
        randomness['seed'] = args.seed
    randomness.setdefault('diff_rank_seed', args.diff_rank_seed)
    randomness.setdefault('deterministic', args.deterministic)
    cfg.randomness = randomness
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    try:
        check_flux_config(cfg)  # config errors name key, value and fix before anything is built
        # one run per work dir, taken before the runner writes its config and logs there
        # (FluxRunner takes it again in train(), also under MMAction2's tools/train.py)
        with WorkDirLock(cfg.work_dir) if _launcher_rank() == 0 else contextlib.nullcontext():
            # as MMAction2's tools: the config's runner_type (FluxRunner in mmflux's configs)
            runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
            runner.train()
    except (AnnotationError, WorkDirBusyError, CheckpointResumeError, CheckpointWriteError) as err:
        sys.exit(f'error: {err}')
    close_process_group()


def _launcher_rank() -> int:
    """This process's rank as the launcher set it (before the process group exists)."""
    for name in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK'):
        if os.environ.get(name, '').isdigit():
            return int(os.environ[name])
    return 0


def close_process_group() -> None:
    """End a distributed run in step: every rank waits for the others, then leaves the group.

    Without this, a rank that exits while another still tears down its gloo
    connections can abort in C++ ("terminate called without an active
    exception", SIGABRT) after a successful run, which fails the launcher.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == '__main__':
    main()
