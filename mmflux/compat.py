"""Workarounds for upstream breakage, in one place.

Each patch names what it works around, what it changes, and is applied once by
:func:`apply_all` (called from ``mmflux/__init__.py``). Patches 1, 3 and 4 act
only where upstream fails (a missing module, no CUDA, ZeRO-1 checkpointing).
Patch 2 is the exception and is meant as one: it changes how *every* checkpoint
loaded through mmengine is unpickled, including plain weight files and URLs that
upstream loads without error (URLs fully unpickled, i.e. able to run code).

1. ``mmaction.models.localizers.drn`` is missing from the mmaction2 1.2.0 wheel,
   so ``import mmaction.models`` fails (open-mmlab/mmaction2 issue 2714).
   -> a placeholder module is registered before mmaction's models are imported.
2. torch >= 2.6 loads with ``weights_only=True`` by default, which refuses the
   numpy arrays and ``HistoryBuffer`` objects that mmengine pickles into training
   checkpoints (open-mmlab/mmengine issue 1621). The blunt fix
   (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``) turns safe loading off for everything.
   -> mmengine's local-file loader is replaced by :func:`safe_load_checkpoint`:
   safe loading always, plus an allowlist of exactly the types mmengine writes.
   Checkpoints given as ``http(s)://`` (and ``open-mmlab://``, ``torchvision://``,
   which resolve to URLs) were fully unpickled by ``torch.hub.load_state_dict_from_url``;
   they are now downloaded to the torch hub cache and loaded the same safe way.
   A file that needs anything else is refused with the names it asked for,
   unless the user opts in (``MMFLUX_TRUST_CHECKPOINTS=1``); see docs/checkpoints.md.
   mmengine's ``HistoryBuffer.__getstate__`` also pickles its built-in statistics
   methods (``HistoryBuffer.mean`` ...) through ``builtins.getattr``, which no safe
   loader may allow. -> ``HistoryBuffer`` stops pickling the four methods that its
   ``__init__`` registers anyway (restored on load); custom statistics are still
   pickled. This changes what mmengine writes into every checkpoint it saves.
3. ``mmengine.dist.init_dist(launcher='pytorch')`` calls ``torch.cuda.set_device``
   even on machines without CUDA, which raises (open-mmlab/mmengine issue 1219).
   -> the call is skipped when CUDA is unavailable (gloo runs on CPU).
4. With ``ZeroRedundancyOptimizer`` (ZeRO-1) every rank must take part in
   ``consolidate_state_dict``, but ``Runner.save_checkpoint`` runs on rank 0 only
   (``master_only``), so saving a checkpoint breaks the process group (discussed
   in open-mmlab/mmengine pull 551, left open in 0.10.7).
   -> ``Runner.save_checkpoint`` first consolidates on all ranks, and the
   optimizer's ``state_dict`` then uses the consolidated state.

Kept next to the code they guard (not patches):

* decord 0.6.0 misdecodes valid videos of some frame widths (dmlc/decord issues
  93 and 336): :mod:`mmflux.datasets.video_fallback` decodes them with OpenCV.
* oneDNN has no bf16 kernels on AVX2-only CPUs (AMD EPYC Zen 2) and fails with
  "could not create a primitive descriptor": :mod:`mmflux.models.layers.onednn`
  checks ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` before using them.
"""
from __future__ import annotations

import collections
import functools
import os
import os.path as osp
import sys
import types
from typing import Any, List

import torch

TRUST_ENV = 'MMFLUX_TRUST_CHECKPOINTS'

_applied = False


def _patch_missing_drn() -> None:
    """Register ``mmaction.models.localizers.drn(.drn)`` if the wheel lacks it."""
    name = 'mmaction.models.localizers.drn'
    if name in sys.modules:
        return
    try:
        import importlib.util
        if importlib.util.find_spec(name) is not None:
            return
    except ModuleNotFoundError:
        pass
    except ImportError:
        return
    pkg = types.ModuleType(name)
    pkg.__path__ = []  # mark as a package
    sub = types.ModuleType(name + '.drn')

    class DRN:  # noqa: D401 - placeholder, not a model
        """Placeholder for the DRN localizer missing from the mmaction2 wheel."""

        def __init__(self, *args, **kwargs):
            raise ImportError(
                'DRN is not shipped in the mmaction2 1.2.0 wheel '
                '(open-mmlab/mmaction2 issue 2714); install mmaction2 from '
                'source to use it.')

    sub.DRN = DRN
    pkg.drn = sub
    sys.modules[name] = pkg
    sys.modules[name + '.drn'] = sub


def _mmengine_checkpoint_globals() -> List[Any]:
    """Types that mmengine writes into training checkpoints, and nothing more."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed: List[Any] = [
        HistoryBuffer, collections.OrderedDict, collections.defaultdict,
        np.ndarray, np.dtype, np.core.multiarray._reconstruct,
        np.core.multiarray.scalar
    ]
    # numpy >= 1.25 pickles dtypes by their class (np.dtypes.Float64DType, ...)
    dtypes_mod = getattr(np, 'dtypes', None)
    if dtypes_mod is not None:
        for attr in dir(dtypes_mod):
            obj = getattr(dtypes_mod, attr)
            if isinstance(obj, type) and issubclass(obj, np.dtype):
                allowed.append(obj)
    return allowed


class UntrustedCheckpointError(RuntimeError):
    """Raised for a checkpoint whose unpickling would need arbitrary code."""


def checkpoints_trusted() -> bool:
    return os.environ.get(TRUST_ENV, '0').lower() in ('1', 'true', 'yes')


def safe_load_checkpoint(filename: str, map_location: Any = None) -> Any:
    """Load a local checkpoint with torch's safe (weights-only) unpickler.

    Plain weight files (a dict of tensors) load as they are. mmengine training
    checkpoints additionally need numpy arrays and ``HistoryBuffer``; those are
    allowlisted. Anything else (a pickled function, an arbitrary class) is refused
    with a message naming the globals it asked for, unless ``MMFLUX_TRUST_CHECKPOINTS=1``.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found.')
    try:
        with torch.serialization.safe_globals(_mmengine_checkpoint_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises UnpicklingError/RuntimeError variants
        if 'weights_only' not in str(err) and 'Unsupported global' not in str(err):
            raise
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
        except Exception:  # pragma: no cover - old zip formats
            unsafe = ['<unknown>']
        if checkpoints_trusted():
            from mmengine.logging import print_log
            print_log(
                f'Loading {filename} with full unpickling because {TRUST_ENV}=1 '
                f'(it references {unsafe}).', logger='current', level=30)
            return torch.load(filename, map_location=map_location, weights_only=False)
        raise UntrustedCheckpointError(
            f'Refusing to load {filename}: unpickling it would import {unsafe}, '
            'which can run arbitrary code. If you made this file yourself and trust '
            f'it, set {TRUST_ENV}=1 (see docs/checkpoints.md); to use only its '
            'weights, re-save the state dict as plain tensors.') from err


def safe_load_url(filename: str, map_location: Any = None, model_dir: str = None,
                  progress: bool = False) -> Any:
    """Download a checkpoint URL into the torch hub cache, then :func:`safe_load_checkpoint`."""
    import urllib.parse

    import torch.hub
    from mmengine.dist import get_dist_info
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, osp.basename(urllib.parse.urlparse(filename).path))
    rank, world_size = get_dist_info()
    if rank == 0 and not osp.isfile(cached):
        torch.hub.download_url_to_file(filename, cached, progress=progress)
    if world_size > 1:
        torch.distributed.barrier()
    return safe_load_checkpoint(cached, map_location)


def _patch_checkpoint_loader() -> None:
    from mmengine.runner import checkpoint as checkpoint_module
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=safe_load_checkpoint, force=True)
    CheckpointLoader.register_scheme(prefixes=('http://', 'https://'), loader=safe_load_url,
                                     force=True)
    # open-mmlab:// and torchvision:// call the module-level load_from_http
    checkpoint_module.load_from_http = safe_load_url


_BUILTIN_STATISTICS = ('min', 'max', 'current', 'mean')


def _patch_history_buffer_pickle() -> None:
    from mmengine.logging.history_buffer import HistoryBuffer
    if getattr(HistoryBuffer.__getstate__, '_mmflux_patched', False):
        return

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop('statistics_methods', None)
        custom = {k: v for k, v in self._statistics_methods.items() if k not in _BUILTIN_STATISTICS}
        if custom:  # user-registered statistics keep mmengine's behaviour
            state['statistics_methods'] = custom
        return state

    original_setstate = HistoryBuffer.__setstate__

    def __setstate__(self, state) -> None:
        original_setstate(self, state)
        for name in _BUILTIN_STATISTICS:
            self._statistics_methods.setdefault(name, getattr(HistoryBuffer, name))

    __getstate__._mmflux_patched = True
    HistoryBuffer.__getstate__ = __getstate__
    HistoryBuffer.__setstate__ = __setstate__


def _patch_cpu_dist_init() -> None:
    from mmengine.dist import utils as dist_utils
    original = dist_utils._init_dist_pytorch
    if getattr(original, '_mmflux_patched', False):
        return

    @functools.wraps(original)
    def init_dist_pytorch(backend, *args, **kwargs):
        if torch.cuda.is_available():
            return original(backend, *args, **kwargs)
        set_device = torch.cuda.set_device
        torch.cuda.set_device = lambda *_a, **_k: None
        try:
            return original(backend, *args, **kwargs)
        finally:
            torch.cuda.set_device = set_device

    init_dist_pytorch._mmflux_patched = True
    dist_utils._init_dist_pytorch = init_dist_pytorch


def _patch_zero_checkpointing() -> None:
    from mmengine.optim.optimizer import zero_optimizer
    from mmengine.runner import Runner
    zero_cls = getattr(zero_optimizer, 'ZeroRedundancyOptimizer', None)
    if zero_cls is None or getattr(Runner.save_checkpoint, '_mmflux_patched', False):
        return
    from mmengine.dist import is_main_process

    def state_dict(self):
        if not getattr(self, '_mmflux_consolidated', False):
            self.consolidate_state_dict()
        self._mmflux_consolidated = False
        return super(zero_cls, self).state_dict() if is_main_process() else dict()

    zero_cls.state_dict = state_dict
    original_save = Runner.save_checkpoint

    @functools.wraps(original_save)
    def save_checkpoint(self, *args, **kwargs):
        wrapper = getattr(self, 'optim_wrapper', None)
        optimizers = []
        if wrapper is not None:
            inner = getattr(wrapper, 'optim_wrappers', None)
            wrappers = inner.values() if isinstance(inner, dict) else [wrapper]
            optimizers = [w.optimizer for w in wrappers if hasattr(w, 'optimizer')]
        for optimizer in optimizers:
            if isinstance(optimizer, zero_cls):
                optimizer.consolidate_state_dict(to=0)  # every rank, before rank 0 saves
                optimizer._mmflux_consolidated = True
        return original_save(self, *args, **kwargs)

    save_checkpoint._mmflux_patched = True
    Runner.save_checkpoint = save_checkpoint


def apply_all() -> None:
    """Apply every workaround once (idempotent)."""
    global _applied
    if _applied:
        return
    _patch_missing_drn()
    _patch_checkpoint_loader()
    _patch_history_buffer_pickle()
    _patch_cpu_dist_init()
    _patch_zero_checkpointing()
    _applied = True
