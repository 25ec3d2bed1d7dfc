"""The runner of mmflux configs: MMAction2's, plus the Token Optimization switch.

Why a runner: ``--cfg-options`` edits the config after it is read, and the runner
is the first thing (in MMAction2's tools/test.py, ``RUNNERS.build(cfg)`` when the
config has ``runner_type``) that sees the whole edited config. Applying the
switch here turns ``token_optimization.budget=64 token_optimization.plan=P``
into the test grid, budget and selector before the dataloader and model exist.
"""
import copy

from mmengine.runner import Runner

from mmaction.registry import RUNNERS
from ...evaluation.test_grid import apply_token_optimization


@RUNNERS.register_module()
class FluxRunner(Runner):
    """:class:`mmengine.runner.Runner` that applies ``cfg.token_optimization``."""

    @classmethod
    def from_cfg(cls, cfg) -> 'Runner':
        cfg = copy.deepcopy(cfg)  # the caller's config stays as it was
        apply_token_optimization(cfg)
        return super().from_cfg(cfg)
