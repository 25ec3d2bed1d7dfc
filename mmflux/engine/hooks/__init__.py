"""Training hooks (registered in MMAction2's ``HOOKS``)."""
from .flux_grid_record_hook import FluxGridRecordHook
from .flux_resume_hook import FluxSamplerResumeHook

__all__ = ['FluxGridRecordHook', 'FluxSamplerResumeHook']
