"""Workarounds for upstream breakage: the only place where mmflux touches its host.

Each module names the upstream issue, the versions it was seen with, and its
scope. Importing mmflux (every mmflux config does, through ``custom_imports``)
applies only the two marked *process-wide*; the others act only where mmflux's own
runner or tools call them, so plain MMAction2/mmengine code keeps its behaviour.

=========================  ==========================================  =======================================
module                     upstream (versions seen)                    scope
=========================  ==========================================  =======================================
``mmaction_drn``           mmaction2 1.2.0 wheel lacks DRN             process-wide, only where ``import
                           (mmaction2 issue 2714)                      mmaction.models`` would fail
``checkpoint_loading``     torch >= 2.6 ``weights_only`` default vs    process-wide: mmengine's loader for
                           mmengine <= 0.10.7 (mmengine issue 1655)    local paths (URLs keep mmengine's)
``cpu_distributed``        mmengine 0.10.7 ``init_dist`` needs CUDA    FluxRunner's ``setup_env``
                           (no upstream issue found)                   (``runner_workarounds``); tools' config
``zero_redundancy``        mmengine 0.10.7 ZeRO-1 state_dict vs        FluxRunner's ``save_checkpoint``
                           master-only saving (mmengine pull 551)      (``runner_workarounds``)
``repeatable_warning``     mmengine's ``FilterDuplicateWarning``       mmflux's own bad-video messages
``dataset_overrides``      mmengine ``Config`` resolves variables      mmflux's tools' ``--cfg-options``
                           at read time (by design)
=========================  ==========================================  =======================================

Not a patch, kept beside the code it guards: decord 0.6.0 misdecodes some frame
widths (dmlc/decord issues 93 and 336, ``mmflux.datasets.video_fallback``).
"""
from .checkpoint_loading import (TORCH_OPT_OUT_ENV, UntrustedCheckpointError,
                                 install_local_loader, safe_load_checkpoint, torch_opt_out)
from .cpu_distributed import adapt_distributed_cfg, init_dist_without_cuda
from .dataset_overrides import apply_dataset_overrides
from .mmaction_drn import register_missing_drn
from .repeatable_warning import RepeatableWarning
from .zero_redundancy import use_zero_redundancy, zero_state_gathered

_applied = False


def apply_process_wide() -> None:
    """The two process-wide workarounds, once (called by ``import mmflux``)."""
    global _applied
    if _applied:
        return
    register_missing_drn()
    install_local_loader()
    _applied = True


__all__ = [
    'apply_process_wide', 'safe_load_checkpoint', 'UntrustedCheckpointError', 'torch_opt_out',
    'TORCH_OPT_OUT_ENV', 'install_local_loader', 'register_missing_drn', 'init_dist_without_cuda',
    'adapt_distributed_cfg', 'use_zero_redundancy', 'zero_state_gathered', 'RepeatableWarning',
    'apply_dataset_overrides'
]
