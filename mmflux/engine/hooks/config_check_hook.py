"""Run :func:`mmflux.utils.config_check.check_flux_config` when a runner starts."""
from mmengine.hooks import Hook

from mmaction.registry import HOOKS
from mmflux.utils.config_check import check_flux_config


@HOOKS.register_module()
class FluxConfigCheckHook(Hook):
    """Check the runner's config in ``before_run`` (before any iteration).

    ``tools/train.py`` / ``tools/test.py`` of mmflux already check the config
    right after merging it; this hook gives the same check to runners started
    any other way (MMAction2's tools, notebooks). mmengine builds the train /
    test dataloaders (and thereby the :class:`~mmflux.datasets.FluxBatchSampler`,
    which validates its ranges) just before ``before_run``, so every config
    error surfaces before the first iteration.

    Usage: ``custom_hooks = [dict(type='FluxConfigCheckHook')]``.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        cfg = getattr(runner, 'cfg', None)
        if cfg is not None:
            check_flux_config(cfg)
