from .flux_runner import CheckpointFileError, CheckpointResumeError, FluxRunner
from .work_dir_lock import WorkDirBusyError, WorkDirLock

__all__ = ['CheckpointFileError', 'CheckpointResumeError', 'FluxRunner', 'WorkDirBusyError',
           'WorkDirLock']
