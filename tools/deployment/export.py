#!/usr/bin/env python
"""Export a recognizer at one grid to ONNX or OpenVINO IR: one file for every token budget.

    python tools/deployment/export.py CONFIG CHECKPOINT --grid FRAMES SIDE \
        --format onnx|openvino --out PATH [--budget B] \
        [--precision fp32|bf16|int8|int8-dynamic [--calib-split val --calib-videos 200]] \
        [--cfg-options data_root=DIR] [--no-check]

The graph holds the whole model for that grid: patch embedding, token selector
(top-k + gather, K an input), the grid's positional table, the blocks and the
head the recognizer picks for the kept count (chosen inside the graph).
Inputs ``clips`` (N, 3, FRAMES, SIDE, SIDE), normalised, N dynamic, and
``budget`` (int64 scalar: patch tokens kept per view, any value up to the grid's
token count); outputs ``logits`` (N, classes) and ``kept`` (N, K).
``--budget`` only sets the default budget a runtime uses when a call gives none
(default: the config's test budget; ``all``: every token). A JSON sidecar
(PATH.json) is written beside it; ``tools/demo.py VIDEO --exported PATH
[--budget B]`` runs it on a video. CHECKPOINT may be ``none`` (random
initialisation, for tests and benchmarks). ``--precision int8`` calibrates on
the first ``--calib-videos`` videos of the training or validation split.
"""
import argparse
import os.path as osp
import sys

import mmflux  # noqa: F401
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger

from mmflux.deployment import export_recognizer
from mmflux.deployment.export import PRECISIONS
from mmflux.deployment.quantize import CALIBRATION_SPLITS, calibration_clips
from mmflux.evaluation import set_test_grid
from mmflux.compat import apply_dataset_overrides


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='export an mmflux recognizer to ONNX / OpenVINO')
    p.add_argument('config')
    p.add_argument('checkpoint', help='checkpoint file, or "none" for random weights')
    p.add_argument('--grid', type=int, nargs=2, metavar=('FRAMES', 'SIDE'), required=True)
    p.add_argument('--budget', default=None,
                   help='default patch tokens per view when a call gives none (int or "all"; '
                   'default: the config\'s test budget); every budget runs from the one file')
    p.add_argument('--format', choices=('onnx', 'openvino'), default='onnx')
    p.add_argument('--out', required=True, help='.onnx (onnx) or .xml (openvino) path')
    p.add_argument('--precision', choices=PRECISIONS, default='fp32',
                   help='bf16: OpenVINO, where the CPU has native bf16; int8: post-training '
                   'static quantization (NNCF / ONNX Runtime) calibrated on --calib-split; '
                   'int8-dynamic: ONNX Runtime dynamic int8 matmuls')
    p.add_argument('--int8', action='store_true', help='alias of --precision int8-dynamic')
    p.add_argument('--calib-split', default='val', choices=CALIBRATION_SPLITS,
                   help='split whose videos calibrate int8 (never the test split)')
    p.add_argument('--calib-videos', type=int, default=200, help='calibration videos')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='config overrides, e.g. data_root=DIR for the calibration videos')
    p.add_argument('--no-check', action='store_true', help='skip the runtime-vs-eager check')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    MMLogger.get_instance('mmflux_export', log_level='INFO')
    suffix = '.xml' if args.format == 'openvino' else '.onnx'
    if not args.out.endswith(suffix):
        sys.exit(f'error: --out {args.out} must end with {suffix} for --format {args.format}')
    budget = None if args.budget is None else 'all' if args.budget.lower() == 'all' \
        else int(args.budget)
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    if checkpoint is not None and not osp.isfile(checkpoint):
        sys.exit(f'error: checkpoint {checkpoint} does not exist')
    precision = 'int8-dynamic' if args.int8 else args.precision
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
        apply_dataset_overrides(cfg, args.cfg_options)  # data_root= reaches the ann files
    calibration = None
    if precision == 'int8':
        calib_cfg = cfg.copy()
        set_test_grid(calib_cfg, args.grid[0], args.grid[1])
        calibration = calibration_clips(calib_cfg, args.calib_split, args.calib_videos)
    try:
        meta = export_recognizer(cfg, checkpoint, args.grid[0], args.grid[1], budget, args.format,
                                 args.out, precision=precision, calibration=calibration,
                                 check=not args.no_check)
    except ValueError as err:
        sys.exit(f'error: {err}')
    print(f'exported {args.out} (+ {args.out}.json): grid {meta["grid"]}, every budget '
          f'{meta["min_budget"]}..{meta["max_budget"]} (default {meta["budget"] or "all"}), '
          f'precision {meta["precision"]}')
    if 'check_max_abs_logit_error' in meta:
        print(f'check vs eager at budgets {meta["check_budgets"]}: max |logit error| '
              f'{meta["check_max_abs_logit_error"]:.2e}, kept equal {meta["check_kept_equal"]}')


if __name__ == '__main__':
    main()
