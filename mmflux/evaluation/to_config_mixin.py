"""Token Optimization for ``mmaction.apis.init_recognizer`` / ``inference_recognizer``.

Why: ``init_recognizer(config)`` builds the model from ``config.model`` and then
hands it the whole config (``model.cfg = config``); ``inference_recognizer``
runs ``model.cfg.test_pipeline``. Neither runs a runner, so the
``token_optimization`` switch is applied at that hand-over
(:attr:`FluxRecognizer.config_handover`): the config's test pipeline gets the
plan's grid, and the built model its budget, head and selector.
"""
from mmaction.registry import MODELS
from ..models.recognizers import FluxRecognizer
from .test_grid import apply_token_optimization, to_settings


def apply_on_handover(model, config) -> None:
    """``model.cfg = config`` applies ``config.token_optimization``."""
    if to_settings(config) is None:
        return
    apply_token_optimization(config)
    model_cfg = config.model
    model.test_cfg = dict(model_cfg.get('test_cfg') or {})
    wanted = (model_cfg.get('backbone') or {}).get('selector')
    current = getattr(model.backbone, 'selector', None)
    if isinstance(wanted, dict) and current is not None and \
            type(current).__name__ != wanted.get('type'):
        model.backbone.selector = MODELS.build(dict(wanted)).to(next(model.parameters()).device)


FluxRecognizer.config_handover = apply_on_handover
