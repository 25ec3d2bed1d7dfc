#!/usr/bin/env python
"""Export a recognizer at one grid and token budget to ONNX or OpenVINO IR.

    python tools/deployment/export.py CONFIG CHECKPOINT --grid FRAMES SIDE --budget B \
        --format onnx|openvino --out PATH [--int8] [--no-check]

The graph holds the whole model for that grid: patch embedding, token selector
(top-k + gather), the grid's positional table, the blocks and the head the
recognizer picks for the kept count. Input ``clips`` (N, 3, FRAMES, SIDE, SIDE),
normalised, N dynamic; outputs ``logits`` (N, classes) and ``kept`` (N, K).
``--budget all`` keeps every token. A JSON sidecar (PATH.json) is written
beside it; ``tools/demo.py VIDEO --exported PATH`` runs it on a video.
CHECKPOINT may be ``none`` (random initialisation, for tests and benchmarks).
"""
import argparse
import os.path as osp
import sys

import mmflux  # noqa: F401
from mmengine.logging import MMLogger

from mmflux.deployment import export_recognizer


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='export an mmflux recognizer to ONNX / OpenVINO')
    p.add_argument('config')
    p.add_argument('checkpoint', help='checkpoint file, or "none" for random weights')
    p.add_argument('--grid', type=int, nargs=2, metavar=('FRAMES', 'SIDE'), required=True)
    p.add_argument('--budget', required=True, help='patch tokens kept per view (int) or "all"')
    p.add_argument('--format', choices=('onnx', 'openvino'), default='onnx')
    p.add_argument('--out', required=True, help='.onnx (onnx) or .xml (openvino) path')
    p.add_argument('--int8', action='store_true',
                   help='ONNX Runtime dynamic int8 quantization of the matmuls (onnx only)')
    p.add_argument('--no-check', action='store_true', help='skip the runtime-vs-eager check')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    MMLogger.get_instance('mmflux_export', log_level='INFO')
    suffix = '.xml' if args.format == 'openvino' else '.onnx'
    if not args.out.endswith(suffix):
        sys.exit(f'error: --out {args.out} must end with {suffix} for --format {args.format}')
    budget = None if args.budget.lower() == 'all' else int(args.budget)
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    if checkpoint is not None and not osp.isfile(checkpoint):
        sys.exit(f'error: checkpoint {checkpoint} does not exist')
    meta = export_recognizer(args.config, checkpoint, args.grid[0], args.grid[1], budget,
                             args.format, args.out, int8=args.int8, check=not args.no_check)
    print(f'exported {args.out} (+ {args.out}.json): grid {meta["grid"]}, '
          f'budget {meta["budget"]}, head {meta["head"]}, {meta["num_tokens"]} tokens per view')
    if 'check_max_abs_logit_error' in meta:
        print(f'check vs eager: max |logit error| {meta["check_max_abs_logit_error"]:.2e}, '
              f'kept equal {meta["check_kept_equal"]}')


if __name__ == '__main__':
    main()
