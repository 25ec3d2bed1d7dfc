#!/usr/bin/env python
"""Picture of the tokens a selector keeps: sampled frames with the dropped patches dimmed.

    python tools/visualize_tokens.py VIDEO CONFIG [CHECKPOINT] --budget 64 \
        [--grid 8 56 | --plan to_plan.json] [--selectors GroupDynamicSelector RandomSelector] \
        [--out tokens.png]

One view (first temporal clip, centre crop) of the test grid (or the plan's grid
for the budget) goes through the patch embedding; each selector keeps ``budget``
tokens; one row per selector shows every token frame (the first frame of each
tubelet) with the dropped patches dimmed and the kept count per frame.
"""
import argparse
import os
import os.path as osp
import sys

import mmflux  # noqa: F401
import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope

from mmaction.registry import MODELS
from mmflux.evaluation.grid_config import read_test_grid, set_test_grid
from mmflux.evaluation.to_switch import apply_token_optimization, set_switch, swap_selector
from mmflux.utils.checkpoint_fit import CheckpointMismatchError, load_for_inference

LABELS = {'GroupDynamicSelector': 'group-dynamic (motion)',
          'RandomSelector': 'random (per group)'}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Picture of the kept tokens')
    p.add_argument('video')
    p.add_argument('config')
    p.add_argument('checkpoint', nargs='?', help='weights (default: random init, with a warning)')
    p.add_argument('--budget', type=int, required=True, help='patch tokens kept per view')
    p.add_argument('--grid', type=int, nargs=2, metavar=('FRAMES', 'SIDE'))
    p.add_argument('--plan', help='Token Optimization plan: the grid for the budget')
    p.add_argument('--selectors', nargs='+', default=['GroupDynamicSelector', 'RandomSelector'])
    p.add_argument('--cell', type=int, default=150, help='pixels per shown frame')
    p.add_argument('--seed', type=int, default=0, help='seed of the random selector')
    p.add_argument('--out', default='work_dirs/tokens.png')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def one_view(cfg, video):
    """(normalised inputs (1, C, T, H, W), raw frames (T, H, W, 3) uint8) of one view."""
    set_test_grid(cfg, num_clips=1, crop='CenterCrop')
    data = Compose(cfg.test_pipeline)(dict(filename=video, label=-1, start_index=0, modality='RGB'))
    raw = data['inputs'][0].permute(1, 2, 3, 0).clamp(0, 255).to(torch.uint8).numpy()
    return pseudo_collate([data]), raw


def kept_masks(model, batch, budget, selectors, seed):
    """selector -> bool mask (token frames, rows, cols) of the kept patch tokens."""
    inputs = model.data_preprocessor(batch, False)['inputs']
    x = inputs.reshape((-1, ) + inputs.shape[2:])[:1]
    backbone = model.backbone
    grid = backbone.token_grid(*x.shape[2:])
    masks = {}
    configured = backbone.selector
    for name in selectors:
        swap_selector(backbone, configured)  # each selector takes the configured one's arguments
        swap_selector(backbone, name, seed=seed)
        with torch.no_grad():
            kept = backbone(x, budget, return_output=True).kept
        mask = torch.zeros(int(np.prod(grid)), dtype=torch.bool)
        mask[kept[0] if kept is not None else slice(None)] = True
        masks[name] = mask.reshape(grid).numpy()
    return masks


def render(raw, masks, tubelet, title, out, cell):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(masks)
    frames, rows, cols = masks[names[0]].shape
    H, W = raw.shape[1:3]
    ph, pw = H // rows, W // cols
    side_in, left_in, top_in, row_gap_in = cell / 100, 1.1, 0.75, 0.55
    fig_w = left_in + frames * (side_in + 0.08) + 0.1
    fig_h = top_in + len(names) * (side_in + row_gap_in)
    fig = plt.figure(figsize=(fig_w, fig_h))
    for r, name in enumerate(names):
        for t in range(frames):
            x0 = (left_in + t * (side_in + 0.08)) / fig_w
            y0 = 1 - (top_in + r * (side_in + row_gap_in) + side_in) / fig_h
            ax = fig.add_axes((x0, y0, side_in / fig_w, side_in / fig_h))
            img = raw[t * tubelet].astype(np.float32)
            keep = np.kron(masks[name][t], np.ones((ph, pw), dtype=bool))[..., None]
            shown = np.where(keep, img, 0.2 * img + 0.1 * 255)  # dropped: dimmed and greyed
            ax.imshow(shown.astype(np.uint8), interpolation='nearest')
            for i in range(1, rows):  # patch grid
                ax.axhline(i * ph - 0.5, color='white', lw=0.3, alpha=0.3)
            for j in range(1, cols):
                ax.axvline(j * pw - 0.5, color='white', lw=0.3, alpha=0.3)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f'kept {int(masks[name][t].sum())}/{rows * cols}', fontsize=8, labelpad=2)
            if r == 0:
                ax.set_title(f'frame {t * tubelet}' + (f'-{t * tubelet + tubelet - 1}'
                                                       if tubelet > 1 else ''), fontsize=8, pad=3)
            if t == 0:
                ax.set_ylabel(f'{LABELS.get(name, name).replace(" (", chr(10) + "(")}\n'
                              f'{int(masks[name].sum())} kept', fontsize=8)
    fig.suptitle(title, fontsize=9, y=1 - 0.12 / fig_h, va='top')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.video):
        sys.exit(f'error: video {args.video} does not exist')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    set_switch(cfg, budget=args.budget, grid=args.grid, plan=args.plan)
    try:
        apply_token_optimization(cfg)
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f'error: {err}')
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model = MODELS.build(cfg.model).eval()
    if args.checkpoint:
        try:
            load_for_inference(model, args.checkpoint)
        except CheckpointMismatchError as err:
            sys.exit(f'error: {err}')
    else:
        print('warning: no checkpoint, the patch embedding is random; group-dynamic selection '
              'then reflects raw pixel motion only')
    grid = read_test_grid(cfg)
    batch, raw = one_view(cfg, args.video)
    masks = kept_masks(model, batch, args.budget, args.selectors, args.seed)
    tokens = masks[args.selectors[0]].size
    title = (f'{osp.basename(args.video)}: {grid.frames} frames x {grid.side} px = {tokens} '
             f'tokens, budget {args.budget}\nbright = kept, dim = dropped; one column per '
             f'token frame ({model.backbone.tubelet_size}-frame tubelet, its first frame shown)')
    render(raw, masks, model.backbone.tubelet_size, title, args.out, args.cell)
    for name, mask in masks.items():
        print(f'{name}: kept {int(mask.sum())} of {mask.size}; per token frame '
              f'{mask.reshape(mask.shape[0], -1).sum(1).tolist()}')
    print(f'written {args.out}')


if __name__ == '__main__':
    main()
