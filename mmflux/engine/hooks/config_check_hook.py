"""Check the built Flux objects of a runner against each other before the first iteration."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmaction.registry import HOOKS
from mmflux.engine.config_check import check_built, raise_problems


@HOOKS.register_module()
class FluxConfigCheckHook(Hook):
    """Run :func:`~mmflux.engine.config_check.check_built` in ``before_run``.

    mmengine builds the model when the runner is made and the train (or test)
    loop with its dataloader, and thereby the
    :class:`~mmflux.datasets.FluxBatchSampler`, just before ``before_run``; so
    every object has checked its own arguments, and this hook checks what spans
    them (sampler vs backbone, budgets vs grids, crops vs patches, labels vs
    classes, read from the built datasets) before any iteration or weight loading, for runners started any way
    (mmflux's or MMAction2's tools, notebooks).

    Usage: ``custom_hooks = [dict(type='FluxConfigCheckHook')]``.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        loaders = {}  # only the loops the runner has built: reading the others would build them
        for name in ('train', 'val', 'test'):
            loader = getattr(getattr(runner, f'_{name}_loop', None), 'dataloader', None)
            if loader is not None:
                loaders[f'{name}_dataloader'] = loader
        batch_sampler = getattr(loaders.get('train_dataloader'), 'batch_sampler', None)
        datasets = {k: v.dataset for k, v in loaders.items() if hasattr(v, 'dataset')}
        raise_problems(check_built(model, batch_sampler, getattr(runner, 'cfg', None), datasets))
