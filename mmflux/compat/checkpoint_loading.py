"""Safe loading of local checkpoints under torch >= 2.6 (mmengine <= 0.10.7).

Upstream: torch 2.6 made ``torch.load`` default to ``weights_only=True``;
mmengine 0.10.7's ``load_from_local`` calls ``torch.load(filename, map_location)``
without the argument, so every training checkpoint mmengine writes is refused at
``--resume`` and ``tools/test.py`` (open-mmlab/mmengine issue 1655; the fix merged
upstream in pull 1670 loads with ``weights_only=False``, i.e. unpickles anything).
A training checkpoint holds, besides tensors, the message hub's
``HistoryBuffer`` objects with numpy arrays, and each buffer pickles its built-in
statistics methods as ``builtins.getattr(HistoryBuffer, 'mean')``.

Fix, process-wide (mmengine's loader registry is global): the loader for local
paths is :func:`safe_load_checkpoint`, a weights-only load whose allowlist adds
exactly the types mmengine and numpy write, and a ``getattr`` that resolves only
``HistoryBuffer``'s own statistics. For every file torch's default already loads,
nothing changes; torch's opt-out ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` is
honoured as torch honours it (full unpickling); URLs keep mmengine's own loader.
"""
from __future__ import annotations

import collections
import os
import os.path as osp
import pickle
from typing import Any, Callable, List, Tuple, Union

import torch

#: torch's own opt-out of weights-only loading, read as torch reads it
TORCH_OPT_OUT_ENV = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'
_TORCH_TRUE_VALUES = ('1', 'y', 'yes', 'true')
#: the statistics that mmengine's HistoryBuffer registers in ``__init__``
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint whose unpickling would need more than tensors and mmengine's types.

    A subclass of :class:`pickle.UnpicklingError`, the error torch raises for a
    refused weights-only load, so code that catches torch's error still catches it.
    """


def torch_opt_out() -> bool:
    """True if the user set torch's ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``."""
    return os.environ.get(TORCH_OPT_OUT_ENV, '0').lower() in _TORCH_TRUE_VALUES


def history_buffer_statistic(owner: Any, name: str) -> Callable:
    """``getattr`` as a pickle may call it: only ``HistoryBuffer.<built-in statistic>``.

    Stands in for ``builtins.getattr`` during a safe load, so the one use that
    mmengine pickles resolves and every other ``getattr`` is refused.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if owner is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({getattr(owner, "__qualname__", type(owner).__name__)}, {name!r}) is not '
        f'one of HistoryBuffer.{{{", ".join(HISTORY_BUFFER_STATISTICS)}}}')


def mmengine_checkpoint_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """What mmengine and numpy write into a training checkpoint, and nothing more."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed: List[Union[Callable, Tuple[Callable, str]]] = [
        HistoryBuffer, collections.OrderedDict, collections.defaultdict, np.ndarray,
        np.dtype, np.core.multiarray._reconstruct, np.core.multiarray.scalar,
        (history_buffer_statistic, 'builtins.getattr')
    ]
    # numpy >= 1.25 pickles dtypes by their class (numpy.dtypes.Float64DType ...)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [obj for obj in vars(dtypes).values()
                    if isinstance(obj, type) and issubclass(obj, np.dtype)]
    return allowed


def _not_yet_allowed() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The allowlist minus what the user registered globally: leaving the
    ``safe_globals`` block then removes only what mmflux added."""
    registered = torch.serialization.get_safe_globals()
    return [entry for entry in mmengine_checkpoint_globals() if entry not in registered]


def _refusal(filename: str, err: pickle.UnpicklingError) -> UntrustedCheckpointError:
    """The error that names what the file asked for and the two ways on."""
    with torch.serialization.safe_globals(_not_yet_allowed()):
        try:
            asked = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
        except Exception:  # pragma: no cover - legacy (non-zip) files
            asked = []
    if asked:
        reason = f'unpickling it would import {asked}'
    else:  # an allowed global used otherwise, e.g. getattr on another object
        detail = str(err).split('WeightsUnpickler error:', 1)[-1]
        detail = ' '.join(detail.split('Check the documentation of torch.load')[0].split())[:300]
        reason = f'its pickle asks for more than tensors and mmengine objects ({detail})'
    return UntrustedCheckpointError(
        f'Refusing to load {filename}: {reason}, which can run arbitrary code. If you made '
        f'this file yourself and trust it, run this command with {TORCH_OPT_OUT_ENV}=1 '
        "(torch's own opt-out; see docs/checkpoints.md); to use only its weights, re-save "
        'the state dict as plain tensors.')


def safe_load_checkpoint(filename: str, map_location: Any = None, *,
                         trusted: bool = False) -> Any:
    """Load a local checkpoint file: the project's one checkpoint-loading policy.

    Tensors, containers and numbers load as with torch's default; mmengine
    training checkpoints (message hub, numpy arrays) load too; anything else
    raises :class:`UntrustedCheckpointError` before any of it is unpickled.

    Args:
        filename: a local path (``~`` expanded).
        map_location: as for :func:`torch.load`.
        trusted: the caller vouches for this one file (e.g. ``--trust-src`` of
            tools/convert_checkpoint.py): unpickle it fully.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found.')
    if trusted:
        return torch.load(filename, map_location=map_location, weights_only=False)
    if torch_opt_out():  # torch then loads with weights_only=False (and warns)
        return torch.load(filename, map_location=map_location)
    try:
        with torch.serialization.safe_globals(_not_yet_allowed()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise _refusal(filename, err) from None


def install_local_loader() -> None:
    """Make :func:`safe_load_checkpoint` mmengine's loader for local paths (process-wide)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=safe_load_checkpoint, force=True)


__all__ = ['UntrustedCheckpointError', 'safe_load_checkpoint', 'install_local_loader',
           'torch_opt_out', 'TORCH_OPT_OUT_ENV', 'HISTORY_BUFFER_STATISTICS',
           'mmengine_checkpoint_globals', 'history_buffer_statistic']
