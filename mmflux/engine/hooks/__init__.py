"""Training hooks (registered in MMAction2's ``HOOKS``)."""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .bad_video_hook import BadVideoCountHook
from .config_check_hook import FluxConfigCheckHook
from .flux_grid_record_hook import FluxGridRecordHook
from .flux_resume_hook import FluxSamplerResumeHook
from .keyed_random_hook import KeyedRandomHook, RandomStateHook

__all__ = [
    'AtomicCheckpointHook', 'BadVideoCountHook', 'FluxConfigCheckHook', 'FluxGridRecordHook', 'FluxSamplerResumeHook',
    'KeyedRandomHook', 'RandomStateHook'
]
