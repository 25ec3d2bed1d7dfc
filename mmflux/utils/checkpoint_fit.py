"""Refuse, at inference, a checkpoint that does not fit the model built from the config.

mmengine (and ``mmaction.apis.init_recognizer``) load checkpoints non-strictly: a
tensor whose shape differs from the model's (another patch size, another number of
classes) or a key the checkpoint lacks only produces a logged warning, and the
model then predicts with those weights left at their random initialisation. That is
right when fine-tuning from a pre-trained model and wrong when testing one, so the
inference tools check the fit first and name every mismatch and the fix.
"""
from typing import Any, Dict, List, Optional

import torch
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import CheckpointLoader


class CheckpointMismatchError(RuntimeError):
    """Raised when a checkpoint misses weights of the model or has other shapes."""


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
    """Raise :class:`CheckpointMismatchError` if ``state`` lacks a weight of ``model``
    or holds one with another shape; return the keys the model does not use."""
    if is_model_wrapper(model):
        model = model.module
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    mismatched = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items()
                  if k in state and hasattr(state[k], 'shape') and tuple(state[k].shape) != tuple(v.shape)]
    if missing or mismatched:
        lines = [f'{filename} does not fit the model built from the config:']
        lines += [f'  {k}: checkpoint {list(c)} vs model {list(m)}' for k, c, m in mismatched[:10]]
        if len(mismatched) > 10:
            lines.append(f'  ... and {len(mismatched) - 10} more tensors of another shape')
        if missing:
            shown = ', '.join(missing[:10]) + (f' ... ({len(missing)} in all)' if len(missing) > 10 else '')
            lines.append(f'  missing from the checkpoint: {shown}')
        lines.append('Fix: use the config the checkpoint was trained with (a copy is in its work dir); '
                     'official FluxViT weights must first go through tools/convert_checkpoint.py.')
        raise CheckpointMismatchError('\n'.join(lines))
    return [k for k in state if k not in expected]


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
