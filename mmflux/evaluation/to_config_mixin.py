"""Token Optimization for ``mmaction.apis.init_recognizer`` / ``inference_recognizer``.

Why: ``init_recognizer(config)`` builds the model from ``config.model`` and then
hands it the whole config (``model.cfg = config``); ``inference_recognizer``
runs ``model.cfg.test_pipeline``. Neither runs a runner, so the
``token_optimization`` switch is applied at that hand-over: the config's test
pipeline gets the plan's grid, and the built model its budget, head and selector.
"""
from mmaction.registry import MODELS
from .test_grid import apply_token_optimization, to_settings


class TokenOptimizationConfigMixin:
    """Recognizer mixin: ``model.cfg = config`` applies ``config.token_optimization``."""

    @property
    def cfg(self):
        return self.__dict__.get('_mmflux_cfg')

    @cfg.setter
    def cfg(self, config) -> None:
        if config is not None and to_settings(config) is not None:
            apply_token_optimization(config)
            self.apply_test_settings(config.model)
        self.__dict__['_mmflux_cfg'] = config

    def apply_test_settings(self, model_cfg) -> None:
        """Take ``test_cfg`` and the backbone's selector type from a model config."""
        self.test_cfg = dict(model_cfg.get('test_cfg') or {})
        wanted = (model_cfg.get('backbone') or {}).get('selector')
        current = getattr(self.backbone, 'selector', None)
        if isinstance(wanted, dict) and current is not None and \
                type(current).__name__ != wanted.get('type'):
            self.backbone.selector = MODELS.build(dict(wanted)).to(
                next(self.parameters()).device)
