"""Refuse, at inference, a checkpoint that does not fit the model built from the config.

mmengine (and ``mmaction.apis.init_recognizer``) load checkpoints non-strictly: a
tensor whose shape differs from the model's (another patch size, another number of
classes) or a key the checkpoint lacks only produces a logged warning, and the
model then predicts with those weights left at their random initialisation. That is
right when fine-tuning from a pre-trained model and wrong when testing one, so the
inference tools check the fit first and name every mismatch and the fix.
"""
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import CheckpointLoader


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit a model: the message names the keys and the fix.

    The one error of checkpoint fit checks (:func:`check_shapes`), raised both when
    loading for inference and when converting official weights.
    """


FIX_CONFIG = ('Fix: use the config the checkpoint was trained with (a copy is in its work dir); '
              'official FluxViT weights must first go through tools/convert_checkpoint.py.')


def _shown(keys: Sequence[str], limit: int = 8) -> str:
    more = f' ... ({len(keys)} in all)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def check_shapes(state: Mapping[str, Any], expected: Mapping[str, Sequence[int]],
                 source: str = 'checkpoint', allow_unexpected: bool = True,
                 fix: str = FIX_CONFIG) -> List[str]:
    """Raise :class:`CheckpointMismatchError` if ``state`` lacks a key of ``expected``
    (name -> shape), holds one with another shape, or (``allow_unexpected=False``)
    holds a key ``expected`` lacks; return the keys ``expected`` does not use."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f'{k}: checkpoint {list(state[k].shape)} vs model {list(v)}'
             for k, v in expected.items()
             if k in state and hasattr(state[k], 'shape') and tuple(state[k].shape) != tuple(v)]
    if missing or wrong or (unexpected and not allow_unexpected):
        lines = [f'{source} does not fit the model:']
        if wrong:
            lines.append(f'  shape mismatches: {_shown(wrong)}')
        if missing:
            lines.append(f'  missing keys (missing from the checkpoint): {_shown(missing)}')
        if unexpected and not allow_unexpected:
            lines.append(f'  unexpected keys: {_shown(unexpected)}')
        lines.append(fix)
        raise CheckpointMismatchError('\n'.join(lines))
    return unexpected


def checkpoint_state_dict(checkpoint: Any) -> Dict[str, torch.Tensor]:
    """The model weights of an mmengine checkpoint or a plain state dict."""
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointMismatchError(f'a checkpoint must be a dict of tensors or hold one under '
                                      f'"state_dict"; got {type(checkpoint).__name__}')
    # DataParallel / DDP prefixes
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}


def check_checkpoint_fits(model: torch.nn.Module, state: Dict[str, torch.Tensor],
                          filename: str = 'checkpoint') -> List[str]:
    """:func:`check_shapes` of ``state`` against ``model``; return the keys it does not use."""
    if is_model_wrapper(model):
        model = model.module
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return check_shapes(state, expected, filename)


def _checked_state(model: torch.nn.Module, filename: str, map_location: Optional[str],
                   logger: Any):
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location=map_location, logger=logger)
    state = checkpoint_state_dict(checkpoint)
    unused = check_checkpoint_fits(model, state, filename)
    if unused:
        print_log(f'{filename}: {len(unused)} weights unused by the model, e.g. {unused[:5]}',
                  logger=logger, level=30)
    return checkpoint, state


def load_for_inference(model: torch.nn.Module, filename: str, map_location: Optional[str] = 'cpu',
                       logger: Any = 'current') -> Dict:
    """Load ``filename`` into ``model`` after :func:`check_checkpoint_fits`.

    Keys the model does not use (a teacher, an optimizer state in the weights) are
    logged and ignored. Returns the loaded checkpoint.
    """
    checkpoint, state = _checked_state(model, filename, map_location, logger)
    (model.module if is_model_wrapper(model) else model).load_state_dict(state, strict=False)
    return checkpoint


def check_checkpoint_file(model: torch.nn.Module, filename: str, logger: Any = 'current') -> None:
    """:func:`check_checkpoint_fits` for a file that mmengine's runner then loads itself."""
    _checked_state(model, filename, 'cpu', logger)
