#!/usr/bin/env python
"""Convert an official FluxViT checkpoint (OpenGVLab/FluxViT) for mmflux / MMAction2.

    python tools/convert_checkpoint.py SRC.pth DST.pth [--config configs/fluxvit/fluxvit-s14_k400.py]

SRC may be a raw state dict or hold it under ``model`` / ``module`` (DeepSpeed),
in fp32 or bf16, with optional ``backbone.`` / ``encoder.`` prefixes. The
architecture (S or B) and the number of classes are read from the weights; with
``--config`` the keys are checked against that config's model instead. The output
loads with ``mmaction.apis.init_recognizer(config, DST)`` with no missing or
unexpected keys; a checkpoint that does not fit is refused with the keys that differ.
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict

import torch

import mmflux  # noqa: F401
from mmflux.compat import UntrustedCheckpointError, safe_load_checkpoint
from mmflux.models.backbones.fluxvit import resolve_arch
from mmflux.utils.checkpoint_convert import (CheckpointMismatchError,
                                             convert_official_state_dict, expected_shapes,
                                             infer_arch, strip_prefixes, unwrap_checkpoint)


def fluxvit_model_cfg(arch: str = 'small', num_classes: int = 400, num_heads: int = 3,
                      pool_dims: int = 768, head_budgets=(3072, 2048, 1024)) -> Dict:
    """Recognizer config of a released FluxViT (used when no config file is given)."""
    width = resolve_arch(arch)['embed_dims']
    return dict(
        type='FluxRecognizer',
        backbone=dict(type='FluxViT', arch=arch),
        cls_head=dict(type='FluxMultiHead', num_classes=num_classes, in_channels=width,
                      head_budgets=tuple(head_budgets)[:num_heads], pool_dims=pool_dims),
        data_preprocessor=dict(type='ActionDataPreprocessor', format_shape='NCTHW'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('src', help='official checkpoint (.pth / .pt / mp_rank_00_model_states.pt)')
    parser.add_argument('dst', help='output checkpoint for mmflux')
    parser.add_argument('--config', help='check the keys against this config\'s model')
    parser.add_argument('--trust-src', action='store_true',
                        help='unpickle SRC fully (only for files you trust: pickles can run code)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not osp.isfile(args.src):
        sys.exit(f'error: {args.src} does not exist')
    try:
        raw = safe_load_checkpoint(args.src, 'cpu', trusted=args.trust_src)
    except UntrustedCheckpointError as err:  # an unpickling refusal names the offending globals
        sys.exit(f'error: could not load {args.src} safely ({err}). If it is a DeepSpeed or '
                 'training checkpoint you trust, pass --trust-src.')
    facts = infer_arch(strip_prefixes(unwrap_checkpoint(raw)))
    if args.config:
        from mmengine.config import Config
        model_cfg = Config.fromfile(args.config).model
    else:
        if facts['arch'] is None:
            sys.exit(f'error: width {facts["embed_dims"]} is neither FluxViT-S (384) nor B (768); '
                     'pass --config with a matching model.')
        model_cfg = fluxvit_model_cfg(facts['arch'], facts['num_classes'] or 400,
                                      num_heads=max(facts['num_heads'], 1),
                                      pool_dims=facts['pool_dims'])
    try:
        state = convert_official_state_dict(raw, expected_shapes(model_cfg))
    except CheckpointMismatchError as err:
        sys.exit(f'error: {args.src}: {err}')
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    meta = dict(source=osp.basename(args.src), arch=str(facts['arch']),
                num_classes=int(facts['num_classes'] or 0), converter='mmflux')
    torch.save(dict(state_dict=state, meta=meta), args.dst)
    print(f'converted {args.src} -> {args.dst}: FluxViT-{facts["arch"]}, '
          f'{facts["num_classes"]} classes, {len(state)} tensors')
    return 0


if __name__ == '__main__':
    sys.exit(main())
