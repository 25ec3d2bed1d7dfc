"""The workarounds that act only inside mmflux's own runner.

:class:`RunnerWorkarounds` is mixed into :class:`mmflux.engine.FluxRunner` (the
``runner_type`` of every mmflux config), before mmengine's ``Runner``; a plain
``Runner`` in the same process keeps mmengine's behaviour. Other ``FluxRunner``
methods that override the same ones reach these through ``super()``.
"""
from .cpu_distributed import init_dist_without_cuda
from .zero_redundancy import zero_state_gathered


class RunnerWorkarounds:
    """``setup_env`` that starts torchrun + gloo on CPUs; ``save_checkpoint`` that
    gathers ZeRO-1 optimizer shards on every rank before rank 0 writes."""

    def setup_env(self, env_cfg) -> None:
        with init_dist_without_cuda():  # mmflux.compat.cpu_distributed
            super().setup_env(env_cfg)

    def save_checkpoint(self, *args, **kwargs):
        # entered on every rank; mmengine's save_checkpoint below is master-only
        with zero_state_gathered(getattr(self, 'optim_wrapper', None)):  # compat.zero_redundancy
            return super().save_checkpoint(*args, **kwargs)
