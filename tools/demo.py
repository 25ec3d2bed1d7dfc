#!/usr/bin/env python
"""Recognize the action in a video at a chosen token budget.

    python tools/demo.py VIDEO CONFIG CHECKPOINT [--budget 1024] [--grid 16 224] \
        [--plan to_plan.json [--max-latency-ms 30 | --max-gmacs 2] [--cascade]] \
        [--label-map labels.txt] [--device cpu]
    python tools/demo.py VIDEO --exported MODEL.onnx|MODEL.xml [--budget 64] [--label-map labels.txt]

``--plan`` with a latency (or GMACs) target runs the most accurate setting of a
Token Optimization plan (tools/token_optimize.py) that meets it; with
``--budget`` it runs the plan's grid for that budget; ``--cascade`` runs the plan's
per-video adaptive budget (for the target, if given) and says which budget
answered and how sure it was. Prints the top-5 classes
(names from the label map, one per line), the grid decoded and the number of
tokens the model actually used per view.
"""
import argparse
import os.path as osp
import sys

import mmflux  # noqa: F401
from mmengine.config import Config

from mmaction.apis import inference_recognizer, init_recognizer
from mmflux.evaluation.to_switch import set_switch
from mmflux.utils.checkpoint_fit import CheckpointMismatchError, load_for_inference


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='mmflux video demo')
    p.add_argument('video')
    p.add_argument('config', nargs='?')
    p.add_argument('checkpoint', nargs='?')
    p.add_argument('--exported', help='an exported model (tools/deployment/export.py) to run '
                   'instead of CONFIG CHECKPOINT, at its grid and at --budget (default: the '
                   'budget it was exported with)')
    p.add_argument('--budget', default=None, help='patch tokens per view (int) or "all"')
    p.add_argument('--grid', type=int, nargs=2, metavar=('FRAMES', 'SIDE'))
    p.add_argument('--plan', help='Token Optimization plan (to_plan.json)')
    p.add_argument('--max-latency-ms', type=float, help='with --plan: latency target per view')
    p.add_argument('--max-gmacs', type=float, help='with --plan: compute target per view')
    p.add_argument('--cascade', action='store_true',
                   help='with --plan: the plan\'s per-video adaptive budget (a cascade)')
    p.add_argument('--runtime', default='pytorch', choices=['pytorch'],
                   help='inference runtime (hook point for exported models; eager PyTorch)')
    p.add_argument('--label-map', help='text file with one class name per line')
    p.add_argument('--device', default='cpu')
    p.add_argument('--topk', type=int, default=5)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.video):
        sys.exit(f'error: video {args.video} does not exist')
    if args.exported:
        if args.config or args.checkpoint or args.grid or args.plan or args.cascade:
            sys.exit('error: --exported runs at its exported grid; give only VIDEO (and '
                     '--budget, --label-map)')
        from mmflux.deployment import inference_exported
        budget = None if args.budget is None else 10**9 if args.budget.lower() == 'all' \
            else int(args.budget)
        try:
            result = inference_exported(args.exported, args.video, budget=budget)
        except ValueError as err:
            sys.exit(f'error: {err}')
        scores, info = result['pred_score'], result
        args.runtime = 'openvino' if args.exported.endswith('.xml') else 'onnxruntime'
    else:
        if not (args.config and args.checkpoint):
            sys.exit('error: give CONFIG and CHECKPOINT (or --exported MODEL)')
        cfg = Config.fromfile(args.config)
        if (args.max_latency_ms is not None or args.max_gmacs is not None
                or args.cascade) and not args.plan:
            sys.exit('error: --max-latency-ms / --max-gmacs / --cascade choose from a plan; '
                     'pass --plan PLAN')
        given = dict(budget=args.budget, grid=args.grid, plan=args.plan,
                     max_latency_ms=args.max_latency_ms, max_gmacs=args.max_gmacs,
                     cascade=True if args.cascade else None)
        try:  # init_recognizer hands the model its config, which applies the switch
            set_switch(cfg, **{k: v for k, v in given.items() if v is not None})
            model = init_recognizer(cfg, None, device=args.device)
        except (ValueError, FileNotFoundError) as err:
            sys.exit(f'error: {err}')
        try:
            load_for_inference(model, args.checkpoint)  # strict, unlike init_recognizer's loading
        except CheckpointMismatchError as err:
            sys.exit(f'error: {err}')
        result = inference_recognizer(model, args.video)
        scores, info = result.pred_score, result.metainfo
    names = None
    if args.label_map:
        with open(args.label_map) as f:
            names = [line.strip() for line in f if line.strip()]
        if len(names) != scores.numel():
            sys.exit(f'error: {args.label_map} has {len(names)} names for {scores.numel()} classes')
    top = scores.topk(min(args.topk, scores.numel()))
    print(f'video: {args.video}')
    grid = info.get('grid')
    print(f'grid per view: {"x".join(str(g) for g in grid) if grid else "?"} (T x H x W), '
          f'selector {info.get("selector")}, runtime {args.runtime}')
    print(f'tokens per view: {info.get("num_tokens")} (budget {info.get("token_budget")}, '
          f'head {info.get("head")})')
    if info.get('cascade_stage') is not None:
        print(f'cascade {"/".join(str(b) for b in info["cascade_budgets"])} ({info["cascade_rule"]}): '
              f'answered by stage {info["cascade_stage"]} (budget {info["token_budget"]}), '
              f'confidence {info["confidence"]:.3f}, {info["tokens_run"]} tokens per view run')
    for rank, (score, idx) in enumerate(zip(top.values.tolist(), top.indices.tolist()), 1):
        name = names[idx] if names else f'class {idx}'
        print(f'{rank}. {name}: {score:.4f}')


if __name__ == '__main__':
    main()
