"""Training hooks (registered in MMAction2's ``HOOKS``)."""
from .flux_resume_hook import FluxSamplerResumeHook

__all__ = ['FluxSamplerResumeHook']
