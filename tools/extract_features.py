#!/usr/bin/env python
"""Pooled features of every video of a list, at a token budget, as ``.npy`` files.

    python tools/extract_features.py CONFIG CHECKPOINT ANN_FILE --budget 64 \
        [--plan to_plan.json | --grid 12 56] [--data-prefix DIR] [--save-tokens] --out DIR

Each video runs through the config's test pipeline (all its views) at the
Token Optimization setting; the head the recognizer would use for the kept
token count pools each view, and the views are averaged: ``DIR/<video>.npy``
holds that (D,) feature. ``--save-tokens`` also writes ``<video>_tokens.npy``
(views, 1 + K, C) and ``<video>_kept.npy`` (views, K) indices into the T x H x W
patch raster. ``DIR/features.csv`` lists video, label, file, tokens kept, head;
a video that cannot be decoded is named in the log and in ``DIR/failed.txt``.
"""
import argparse
import csv
import os
import os.path as osp
import sys

import mmflux  # noqa: F401
import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils import ProgressBar

from mmaction.registry import MODELS
from mmflux.datasets.robust_dataset import FAIL_REASON_KEY, FAILED_KEY
from mmflux.evaluation.grid_config import read_test_grid
from mmflux.evaluation.to_switch import apply_token_optimization, set_switch
from mmflux.utils.checkpoint_fit import CheckpointMismatchError, load_for_inference


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Pooled video features at a token budget')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('ann_file', help='MMAction2 list ("video label" lines)')
    p.add_argument('--budget', required=True, help='patch tokens per view, or "all"')
    p.add_argument('--plan', help='Token Optimization plan: the grid for the budget')
    p.add_argument('--grid', type=int, nargs=2, metavar=('FRAMES', 'SIDE'))
    p.add_argument('--data-prefix', help='video folder (default: the test dataloader\'s)')
    p.add_argument('--save-tokens', action='store_true', help='also write kept tokens/indices')
    p.add_argument('--out', required=True)
    p.add_argument('--device', default='cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def stem(path: str) -> str:
    return osp.splitext(osp.basename(str(path)))[0]


@torch.no_grad()
def features(model, batch, budget):
    """Per video of the batch: (pooled (D,), BackboneOutput of its views, head)."""
    data = model.data_preprocessor(batch, False)
    inputs = data['inputs']
    out = []
    for video in inputs:  # (V, C, T, H, W)
        feats = model.backbone(video, budget, return_output=True)
        head = model.select_head(feats.num_kept)
        pooled = model.cls_head.pool(feats.tokens, head).mean(0)
        out.append((pooled, feats, head))
    return out


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    try:
        given = dict(grid=args.grid, plan=args.plan)
        set_switch(cfg, budget=args.budget, **{k: v for k, v in given.items() if v is not None})
        apply_token_optimization(cfg)
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f'error: {err}')
    if not osp.isfile(args.ann_file):
        sys.exit(f'error: annotation file {args.ann_file} does not exist')
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    logger = MMLogger.get_instance('mmflux_features', log_level='INFO')
    model = MODELS.build(cfg.model)
    try:
        load_for_inference(model, args.checkpoint, logger=logger)
    except CheckpointMismatchError as err:
        sys.exit(f'error: {err}')
    model.to(args.device).eval()
    budget = cfg.model.test_cfg.get('token_budget')
    loader = dict(cfg.test_dataloader, batch_size=1, persistent_workers=False)
    loader['dataset'] = dict(loader['dataset'], ann_file=args.ann_file)
    if args.data_prefix:
        loader['dataset']['data_prefix'] = dict(video=args.data_prefix)
    loader = Runner.build_dataloader(loader)
    os.makedirs(args.out, exist_ok=True)
    rows, failed = [], []
    bar = ProgressBar(len(loader.dataset))
    for batch in loader:
        sample = batch['data_samples'][0]
        name = sample.metainfo.get('filename', '?')
        if sample.metainfo.get(FAILED_KEY, False):
            failed.append((name, sample.metainfo.get(FAIL_REASON_KEY, 'unknown reason')))
        else:
            pooled, feats, head = features(model, batch, budget)[0]
            tokens, kept = feats.tokens, feats.kept
            base = osp.join(args.out, stem(name))
            np.save(base + '.npy', pooled.float().cpu().numpy())
            if args.save_tokens:
                np.save(base + '_tokens.npy', tokens.float().cpu().numpy())
                if kept is not None:
                    np.save(base + '_kept.npy', kept.cpu().numpy())
            rows.append(dict(video=osp.basename(name), label=int(sample.gt_label.reshape(-1)[0]),
                             feature=osp.basename(base) + '.npy', dim=int(pooled.numel()),
                             kept_tokens=feats.num_kept, head=head))
        bar.update()
    print()
    with open(osp.join(args.out, 'features.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=['video', 'label', 'feature', 'dim', 'kept_tokens',
                                               'head'])
        writer.writeheader()
        writer.writerows(rows)
    with open(osp.join(args.out, 'failed.txt'), 'w') as f:
        f.writelines(f'{name}\t{reason}\n' for name, reason in failed)
    for name, reason in failed:
        logger.warning(f'no feature for {name}: {reason}')
    grid = read_test_grid(cfg)
    print(f'{len(rows)} features written to {args.out} (grid {grid.frames}x{grid.side}, budget '
          f'{budget}, {rows[0]["kept_tokens"] if rows else "?"} tokens kept per view); '
          f'{len(failed)} videos failed' + (f': {[n for n, _ in failed]}' if failed else ''))


if __name__ == '__main__':
    main()
