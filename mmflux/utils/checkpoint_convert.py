"""Convert the authors' FluxViT checkpoints to mmflux/MMAction2 state dicts.

A pure filter over a state dict (like timm's ``checkpoint_filter_fn``): unwrap,
strip prefixes, upcast to fp32, route backbone keys under ``backbone.`` and head
keys under ``cls_head.``, and check every key and shape against the architecture.
"""
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Tuple

import torch

from .checkpoint_fit import CheckpointMismatchError, check_shapes

BACKBONE_PREFIXES = ('cls_token', 'pos_embed', 'gpe_proj.', 'patch_embed.', 'blocks.')
HEAD_PREFIXES = ('clip_projector.', 'fc_norm.', 'head.', 'final_clip_decoder_for_projs.')
STRIP_PREFIXES = ('module.', 'backbone.', 'encoder.')
WIDTH_TO_ARCH = {384: 'small', 768: 'base'}


def unwrap_checkpoint(obj: Mapping) -> Dict[str, torch.Tensor]:
    """The tensor dict of a raw state dict, or of one stored under ``model``/``module``/``state_dict``."""
    for key in ('model', 'module', 'state_dict'):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            return unwrap_checkpoint(obj[key])
    if not isinstance(obj, Mapping):
        raise CheckpointMismatchError(f'Expected a state dict, got {type(obj).__name__}.')
    return {k: v for k, v in obj.items() if torch.is_tensor(v)}


def strip_prefixes(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in STRIP_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key] = value
    return out


def infer_arch(state: Mapping[str, torch.Tensor]) -> Dict:
    """Architecture facts readable from official keys: width, depth, heads, classes."""
    if 'patch_embed.proj.weight' not in state:
        raise CheckpointMismatchError(
            'No patch_embed.proj.weight: this is not a FluxViT checkpoint '
            f'(first keys: {sorted(state)[:5]}).')
    width = state['patch_embed.proj.weight'].shape[0]
    depth = 1 + max((int(k.split('.')[1]) for k in state if k.startswith('blocks.')), default=-1)
    num_classes = state['head.0.weight'].shape[0] if 'head.0.weight' in state else None
    num_heads = sum(1 for k in state if k.startswith('head.') and k.endswith('.weight'))
    pool_dims = state['fc_norm.weight'].shape[0] if 'fc_norm.weight' in state else 768
    return dict(arch=WIDTH_TO_ARCH.get(width), embed_dims=width, depth=depth,
                num_classes=num_classes, num_heads=num_heads, pool_dims=pool_dims)


def convert_official_state_dict(checkpoint: Mapping,
                                expected: Optional[Mapping[str, Tuple[int, ...]]] = None
                                ) -> Dict[str, torch.Tensor]:
    """Official FluxViT weights -> ``backbone.*`` / ``cls_head.*`` fp32 tensors.

    Args:
        checkpoint: a raw state dict or one under ``model`` / ``module``.
        expected: optional name -> shape map of the target model (e.g. from
            :func:`expected_shapes`); any missing, unexpected or mis-shaped key
            raises :class:`CheckpointMismatchError` listing them.
    """
    state = strip_prefixes(unwrap_checkpoint(checkpoint))
    converted: Dict[str, torch.Tensor] = OrderedDict()
    unknown = []
    for key, value in state.items():
        if key.startswith(BACKBONE_PREFIXES):
            new_key = 'backbone.' + key
        elif key.startswith(HEAD_PREFIXES):
            new_key = 'cls_head.' + key
        else:
            unknown.append(key)
            continue
        converted[new_key] = value.detach().to(torch.float32).contiguous()
    if unknown:
        raise CheckpointMismatchError(
            f'{len(unknown)} keys are not part of FluxViT: {unknown[:10]}')
    if expected is not None:
        check_against(converted, expected)
    return converted


def check_against(state: Mapping[str, torch.Tensor], expected: Mapping[str, Tuple[int, ...]]) -> None:
    """Converted weights must fit exactly: no missing, unexpected or mis-shaped key."""
    check_shapes(state, expected, 'converted checkpoint', allow_unexpected=False,
                 fix='Fix: pass the --config of the model these weights are for '
                 '(width, depth, classes, heads and pool dims must match).')


def expected_shapes(model_cfg: Mapping) -> Dict[str, Tuple[int, ...]]:
    """name -> shape of a recognizer built from ``model_cfg``, without allocating weights."""
    from mmengine.config import ConfigDict
    from mmengine.registry import DefaultScope

    from mmaction.registry import MODELS
    cfg = ConfigDict(model_cfg)
    with DefaultScope.overwrite_default_scope('mmaction'), torch.device('meta'):
        model = MODELS.build(cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}
