"""The runner of mmflux configs: MMAction2's, plus the Token Optimization switch
and the batch sampler's token geometry.

Why a runner: ``--cfg-options`` edits the config after it is read, and the runner
is the first thing (in MMAction2's tools/test.py, ``RUNNERS.build(cfg)`` when the
config has ``runner_type``) that sees the whole edited config. Applying the
switch here turns ``token_optimization.budget=64 token_optimization.plan=P``
into the test grid, budget and selector before the dataloader and model exist.
It is also the first thing that holds both the built model and the (not yet
built) train dataloader, so the Flux batch sampler counts tokens with the
backbone's own patch and tubelet sizes instead of a copy in every config.
"""
import copy

from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from mmaction.registry import RUNNERS
from ...compat.runner_workarounds import RunnerWorkarounds
from ...datasets.flux_batch_sampler import with_backbone_geometry
from ...evaluation.to_switch import apply_token_optimization


@RUNNERS.register_module()
class FluxRunner(RunnerWorkarounds, Runner):
    """:class:`mmengine.runner.Runner` that applies ``cfg.token_optimization`` and
    gives a :class:`~mmflux.datasets.FluxBatchSampler` the backbone's geometry."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        loader = self._train_dataloader
        if isinstance(loader, dict) and isinstance(loader.get('batch_sampler'), dict):
            loader['batch_sampler'] = with_backbone_geometry(loader['batch_sampler'],
                                                             getattr(model, 'backbone', None))

    @classmethod
    def from_cfg(cls, cfg) -> 'Runner':
        cfg = copy.deepcopy(cfg)  # the caller's config stays as it was
        apply_token_optimization(cfg)
        return super().from_cfg(cfg)
