#!/usr/bin/env python
"""Test an mmflux (MMAction2) config and checkpoint at a token budget.

    python tools/test.py CONFIG CHECKPOINT [--budget N|all] [--grid FRAMES SIDE | --plan PLAN]
                         [--head H] [--cascade] [--work-dir DIR] [--dump preds.pkl] [--cfg-options ...]

The flags are shorthands of the config switch ``token_optimization`` (see
docs/token_optimization.md), which MMAction2's own tools/test.py reaches with
``--cfg-options`` alone: ``--budget 1024 --grid 16 224`` is
``token_optimization.budget=1024 "token_optimization.grid=(16,224)"``, a 16x224
grid reduced to 1024 tokens by the selector; ``--plan P`` takes the grid and
selector for the budget from a plan written by tools/token_optimize.py;
``--plan P --cascade [--cfg-options token_optimization.max_gmacs=G]`` runs the
plan's per-video adaptive budget (``token_optimization.cascade=True``).
Metrics are printed and written to the work dir as JSON (``--out-json``), before
the predictions (``--dump``): a failed write (a full disk) names the file and the
cause, leaves no partial file and does not lose what was already saved.
"""
import argparse
import json
import os
import os.path as osp
import pickle
import sys
from typing import List, Optional

import mmflux  # noqa: F401
from mmflux.compat import adapt_distributed_cfg, apply_dataset_overrides
from mmengine.config import Config, DictAction
from mmengine.evaluator import DumpResults
from mmengine.logging import print_log
from mmengine.registry import METRICS
from mmaction.registry import RUNNERS
from mmengine.runner import Runner

from mmflux.datasets import AnnotationError
from mmflux.engine.runner.checkpoint_files import (checkpoint_problem, describe_os_error,
                                                   write_bytes_atomic, write_text_atomic)
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
    parser.add_argument('--cascade', action='store_true',
                        help='with --plan: the plan\'s per-video adaptive budget (a cascade)')
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
    set_switch(cfg, **given, grid=args.grid, plan=args.plan, head=args.head,
               cascade=True if args.cascade else None)
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
        if not args.dump.endswith(('.pkl', '.pickle')):
            sys.exit(f'error: --dump {args.dump}: the predictions are pickled; name a .pkl file')
        # kept in memory during the evaluation and written after the metrics (see save_results)
        cfg.test_evaluator = list(cfg.test_evaluator) if isinstance(
            cfg.test_evaluator, (list, tuple)) else [cfg.test_evaluator]
        cfg.test_evaluator.append(dict(type=CollectedPredictions.__name__, out_file_path=args.dump))
    try:
        check_flux_config(cfg)  # config errors name key, value and fix before anything is built
    except AnnotationError as err:
        sys.exit(f'error: {err}')
    problem = None if '://' in args.checkpoint else checkpoint_problem(args.checkpoint)
    if problem is not None:
        sys.exit(f'error: checkpoint {args.checkpoint} is {problem}; fix: pass a complete checkpoint '
                 '(an interrupted download or copy: fetch it again).')
    # as MMAction2's tools: the config's runner_type (FluxRunner in mmflux's configs) builds it
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    # mmengine loads non-strictly: a checkpoint of another layout would test random weights
    try:
        check_checkpoint_file(runner.model, args.checkpoint)
    except CheckpointMismatchError as err:
        sys.exit(f'error: {err}')
    metrics = runner.test()
    settings = dict(budget=cfg.model.test_cfg.get('token_budget'), head=cfg.model.test_cfg.get('head'),
                    cascade=cfg.model.test_cfg.get('cascade'),
                    grid=[grid.frames, grid.side] if grid else None,
                    selector=cfg.model.get('backbone', {}).get('selector', {}).get('type'),
                    checkpoint=args.checkpoint)
    if runner.rank == 0:
        out = args.out_json or osp.join(cfg.work_dir, 'test_metrics.json')
        failures = save_results(metrics, settings, out, args.dump, runner)
        if failures:
            sys.exit('error: ' + '\n'.join(failures))
    return metrics


class CollectedPredictions(DumpResults):
    """mmengine's ``DumpResults`` that keeps the predictions instead of writing them
    inside the evaluation, where a failed write (a full disk) would lose the metrics."""

    def compute_metrics(self, results: list) -> dict:
        self.collected = results
        return {}


METRICS.register_module(module=CollectedPredictions, force=True)


def save_results(metrics: dict, settings: dict, out_json: str, dump: Optional[str],
                 runner) -> List[str]:
    """Write the metrics, then the predictions; each file complete or absent.

    The metrics come first (they are also in the log); a failed write names the
    file and the cause and says what was saved. Returns the failures.
    """
    failures, saved = [], []
    record = dict(metrics={k: float(v) for k, v in metrics.items()}, **settings)
    try:
        os.makedirs(osp.dirname(osp.abspath(out_json)), exist_ok=True)
        write_text_atomic(out_json, json.dumps(record, indent=2))
        saved.append(out_json)
    except OSError as err:
        failures.append(f'could not write the metrics to {out_json}: {describe_os_error(err)}; '
                        f'they are in the log above and here: {json.dumps(record["metrics"])}')
    if dump:
        metric = next((m for m in runner.test_loop.evaluator.metrics
                       if isinstance(m, CollectedPredictions)), None)
        if not hasattr(metric, 'collected'):
            return failures + [f'no predictions were collected for {dump} (the test loop has no '
                               'evaluator with CollectedPredictions)']
        try:
            os.makedirs(osp.dirname(osp.abspath(dump)), exist_ok=True)
            write_bytes_atomic(dump, pickle.dumps(metric.collected))
            print_log(f'predictions written to {dump}', logger='current')
        except OSError as err:
            failures.append(f'could not write the predictions to {dump}: {describe_os_error(err)}; '
                            f'nothing was left there. Saved: {", ".join(saved) or "nothing"} (the '
                            'metrics are in the log above). Free space and run again to get them.')
    return failures


if __name__ == '__main__':
    main()
