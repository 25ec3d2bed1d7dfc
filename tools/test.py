#!/usr/bin/env python
"""Test an mmflux (MMAction2) config and checkpoint at a token budget.

    python tools/test.py CONFIG CHECKPOINT [--budget N|all] [--grid FRAMES SIDE | --plan PLAN]
                         [--head H] [--work-dir DIR] [--dump preds.pkl] [--cfg-options ...]

The flags are shorthands of the config switch ``token_optimization`` (see
docs/token_optimization.md), which MMAction2's own tools/test.py reaches with
``--cfg-options`` alone: ``--budget 1024 --grid 16 224`` is
``token_optimization.budget=1024 "token_optimization.grid=(16,224)"``, a 16x224
grid reduced to 1024 tokens by the selector; ``--plan P`` takes the grid and
selector for the budget from a plan written by tools/token_optimize.py.
Metrics are printed and written to the work dir as JSON (``--out-json``).
"""
import argparse
import json
import os
import os.path as osp
import sys

import mmflux  # noqa: F401
from mmflux.compat import adapt_distributed_cfg, apply_dataset_overrides
from mmengine.config import Config, DictAction
from mmaction.registry import RUNNERS
from mmengine.runner import Runner

from mmflux.evaluation.grid_config import read_test_grid
from mmflux.evaluation.to_switch import apply_token_optimization, parse_budget, set_switch
from mmflux.utils.checkpoint_fit import CheckpointMismatchError, check_checkpoint_file
from mmflux.engine.config_check import check_flux_config


def budget_arg(value: str) -> str:
    """Checked here (argparse names a bad value); converted by set_switch ('all' -> None)."""
    parse_budget(value, '--budget')
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a recognizer with mmflux')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--budget', type=budget_arg, default=None,
                        help='patch tokens per view (int) or "all"; default: the config\'s')
    parser.add_argument('--grid', type=int, nargs=2, metavar=('FRAMES', 'SIDE'),
                        help='test grid: frames per view and spatial side')
    parser.add_argument('--plan', help='Token Optimization plan (tools/token_optimize.py): grid and '
                        'selector for the budget')
    parser.add_argument('--head', type=int, default=None,
                        help='force a head (default: the config\'s, else the nearest budget)')
    parser.add_argument('--work-dir')
    parser.add_argument('--dump', help='pickle the predictions to this file')
    parser.add_argument('--out-json', help='write the metrics (and settings) to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
        apply_dataset_overrides(cfg, args.cfg_options)  # data_root=, num_classes= ...
    given = {} if args.budget is None else dict(budget=args.budget)  # 'all' -> None there
    set_switch(cfg, **given, grid=args.grid, plan=args.plan, head=args.head)
    apply_token_optimization(cfg)  # the runner would too; here so the settings below are final
    grid = read_test_grid(cfg)
    cfg.launcher = args.launcher
    adapt_distributed_cfg(cfg, args.launcher)
    cfg.load_from = args.checkpoint
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.dump:
        cfg.test_evaluator = list(cfg.test_evaluator) if isinstance(
            cfg.test_evaluator, (list, tuple)) else [cfg.test_evaluator]
        cfg.test_evaluator.append(dict(type='DumpResults', out_file_path=args.dump))
    check_flux_config(cfg)  # config errors name key, value and fix before anything is built
    # as MMAction2's tools: the config's runner_type (FluxRunner in mmflux's configs) builds it
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    # mmengine loads non-strictly: a checkpoint of another layout would test random weights
    try:
        check_checkpoint_file(runner.model, args.checkpoint)
    except CheckpointMismatchError as err:
        sys.exit(f'error: {err}')
    metrics = runner.test()
    settings = dict(budget=cfg.model.test_cfg.get('token_budget'), head=cfg.model.test_cfg.get('head'),
                    grid=[grid.frames, grid.side] if grid else None,
                    selector=cfg.model.get('backbone', {}).get('selector', {}).get('type'),
                    checkpoint=args.checkpoint)
    out = args.out_json or osp.join(cfg.work_dir, 'test_metrics.json')
    if runner.rank == 0:
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        with open(out, 'w') as f:
            json.dump(dict(metrics={k: float(v) for k, v in metrics.items()}, **settings), f, indent=2)
    return metrics


if __name__ == '__main__':
    main()
