"""Recognizer that trains several token budgets at once and tests at any budget."""
from typing import Callable, ClassVar, Dict, List, Optional, Sequence

import torch

from mmaction.models.recognizers.base import BaseRecognizer
from mmaction.registry import MODELS
from mmaction.utils import OptSampleList, SampleList
from ..backbone_output import BackboneOutput


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_budget(value) -> bool:
    return _is_int(value) and value >= 1


@MODELS.register_module()
class FluxRecognizer(BaseRecognizer):
    """Video recognizer for budget-flexible backbones (a :class:`BaseFluxBackbone`
    such as FluxViT: ``backbone(x, budget, return_output=True)`` returns a
    :class:`BackboneOutput`) and a :class:`FluxMultiHead`.

    Training (``train_cfg``):
        budgets: token budgets run on every batch (Flux-Multi: ``(3072, 2048,
            1024)``; Flux-Single: one budget). A budget at or above the batch's
            token count keeps every token.
        heads: the head trained at each budget (default ``0, 1, ...``).
        align_weight: weight of the smooth-L1 alignment of every smaller budget's
            projected feature to the detached feature of the first budget
            (0 disables it; Flux-Single has none).
        Losses come from the head (``cls_head.loss_by_feat``: ``loss_cls_<head>``,
        ``top1_acc``...) and ``cls_head.loss_align`` (``loss_align_<head>``).

    Testing (``test_cfg``):
        token_budget: patch tokens kept per view (None: all).
        head: force a head; default the head trained for the budget nearest to
            the number of tokens actually kept.
        max_testing_views: run at most this many views per backbone call.
    """

    def __init__(self, backbone: Dict, cls_head: Dict, neck: Optional[Dict] = None,
                 train_cfg: Optional[Dict] = None, test_cfg: Optional[Dict] = None,
                 data_preprocessor: Optional[Dict] = None) -> None:
        errors = self.cfg_errors(train_cfg, test_cfg)
        if errors:
            raise ValueError('\n'.join(errors))
        super().__init__(backbone, cls_head=cls_head, neck=neck, train_cfg=train_cfg,
                         test_cfg=test_cfg, data_preprocessor=data_preprocessor)
        if not callable(getattr(self.backbone, 'forward_features', None)):
            raise ValueError(f'model.backbone.type={type(self.backbone).__name__!r} has no '
                             'forward_features(x, budget) returning a BackboneOutput; fix: use a '
                             'Flux backbone (a BaseFluxBackbone: FluxViT, '
                             'SelectiveVisionTransformer).')
        train_cfg = train_cfg or {}
        self.train_budgets = list(train_cfg.get('budgets', self.cls_head.head_budgets))
        self.train_heads = list(train_cfg.get('heads', range(len(self.train_budgets))))
        self.align_weight = float(train_cfg.get('align_weight', 1.0))
        errors = self._head_errors()
        if errors:
            raise ValueError('\n'.join(errors))

    # ------------------------------------------------------------ config
    @staticmethod
    def cfg_errors(train_cfg: Optional[Dict], test_cfg: Optional[Dict]) -> List[str]:
        """Problems of the recognizer's own budget settings (no other object needed)."""
        errors = []
        budgets = (train_cfg or {}).get('budgets')
        if budgets is not None:
            if not isinstance(budgets, (list, tuple)) or not budgets:
                errors.append(f'model.train_cfg.budgets={budgets!r}: expected a non-empty list of '
                              'token budgets; fix: e.g. budgets=(3072, 2048, 1024) (Flux-Multi) '
                              'or (2048,).')
            else:
                errors += [f'model.train_cfg.budgets={list(budgets)}: {b!r} is not a token count '
                           '>= 1; fix: use a positive int (patch tokens kept) or None to keep '
                           'every token.' for b in budgets if b is not None and not _is_budget(b)]
        budget = (test_cfg or {}).get('token_budget')
        if budget is not None and not _is_budget(budget):
            errors.append(f'model.test_cfg.token_budget={budget!r}: {budget!r} is not a token '
                          'count >= 1; fix: use a positive int (patch tokens kept) or None to '
                          'keep every token.')
        return errors

    def _head_errors(self) -> List[str]:
        """Budgets and heads must pair up with the head's declared budgets."""
        budgets, heads = self.train_budgets, self.train_heads
        head_budgets = self.cls_head.head_budgets
        num = len(head_budgets)
        errors = []
        test_head = (self.test_cfg or {}).get('head')
        if test_head is not None and not (_is_int(test_head) and 0 <= test_head < num):
            errors.append(f'model.test_cfg.head={test_head!r}: out of range for the {num} heads '
                          f'of model.cls_head.head_budgets={head_budgets}; fix: use 0..{num - 1} '
                          'or None (nearest budget).')
        if len(heads) != len(budgets):
            return errors + [f'model.train_cfg.heads={heads!r}: must give one head per budget of '
                             f'model.train_cfg.budgets={budgets}; fix: e.g. '
                             f'heads={tuple(range(len(budgets)))}.']
        bad = [h for h in heads if not (_is_int(h) and 0 <= h < num)]
        if bad:
            return errors + [f'model.train_cfg.heads={heads}: {bad} out of range for the {num} '
                             f'heads of model.cls_head.head_budgets={head_budgets}; fix: use '
                             f'heads in 0..{num - 1} or give cls_head one budget per head.']
        return errors

    # ------------------------------------------------------------ config hand-over
    #: The one hook of ``mmaction.apis.init_recognizer``: it builds the model from
    #: ``config.model`` alone and then hands it the whole config (``model.cfg =
    #: config``), which ``inference_recognizer`` reads the test pipeline from. Top-level
    #: test-time switches (``token_optimization``) can only reach the model there.
    #: ``hook(model, config)`` is called on that assignment; the Token Optimization
    #: owner (:mod:`mmflux.evaluation.to_switch`) installs it, so the model layer
    #: does not know the switch. None: the config is only stored.
    config_handover: ClassVar[Optional[Callable]] = None

    @property
    def cfg(self):
        """The config ``init_recognizer`` handed over (None before)."""
        return self.__dict__.get('_handed_over_cfg')

    @cfg.setter
    def cfg(self, config) -> None:
        self.__dict__['_handed_over_cfg'] = config
        hook = type(self).config_handover
        if config is not None and hook is not None:
            hook(self, config)

    @property
    def test_budget(self) -> Optional[int]:
        return (self.test_cfg or {}).get('token_budget')

    # ------------------------------------------------------------ features
    def _backbone(self, x: torch.Tensor, budget: Optional[int]) -> BackboneOutput:
        return self.backbone(x, budget, return_output=True)

    def extract_feat(self, inputs: torch.Tensor, stage: str = 'backbone',
                     data_samples: OptSampleList = None, test_mode: bool = False,
                     budget: Optional[int] = None, head: Optional[int] = None):
        """Tokens (stage ``'backbone'``) or logits (``'head'``) at the test budget.

        ``inputs``: (N, V, C, T, H, W) views or (N, C, T, H, W). The info dict
        gives ``num_tokens`` (patch tokens that reached the blocks, as the
        backbone reports them) and, at stage ``'head'``, the ``head`` used.
        """
        if inputs.dim() == 6:
            inputs = inputs.reshape((-1, ) + inputs.shape[2:])
        cfg = self.test_cfg or {}
        budget = budget if budget is not None else cfg.get('token_budget')
        chunk = cfg.get('max_testing_views') or inputs.shape[0]
        outs = [self._backbone(part, budget) for part in inputs.split(chunk)]
        tokens = torch.cat([out.tokens for out in outs])
        info = dict(num_tokens=outs[0].num_kept, grid_tokens=outs[0].grid_tokens)
        if stage == 'backbone':
            return tokens, info
        head = self.select_head(info['num_tokens'], head)
        return self.cls_head(tokens, head), dict(info, head=head)

    def select_head(self, num_tokens: int, head: Optional[int] = None) -> int:
        if head is None:
            head = (self.test_cfg or {}).get('head')
        if head is None:
            return self.cls_head.nearest_head(num_tokens)
        return self.cls_head.check_head(head)

    # ------------------------------------------------------------ modes
    def loss(self, inputs: torch.Tensor, data_samples: SampleList, **kwargs) -> Dict:
        """Flux-Multi: the head's classification loss per budget plus feature alignment."""
        x = inputs.reshape((-1, ) + inputs.shape[2:]) if inputs.dim() == 6 else inputs
        scores, losses = [], {}
        teacher = None
        for i, (budget, head) in enumerate(zip(self.train_budgets, self.train_heads)):
            pooled = self.cls_head.pool(self._backbone(x, budget).tokens, head)
            scores.append(self.cls_head.classify(pooled, head))
            if i == 0:
                teacher = pooled
            elif self.align_weight > 0 and head > 0:
                losses[f'loss_align_{head}'] = self.align_weight * self.cls_head.loss_align(
                    teacher, pooled, head)
        return dict(self.cls_head.loss_by_feat(scores, data_samples, self.train_heads), **losses)

    def predict(self, inputs: torch.Tensor, data_samples: SampleList, **kwargs) -> SampleList:
        """Per-view logits at the test budget, averaged over views by the head."""
        logits, info = self.extract_feat(inputs, stage='head', test_mode=True)
        predictions = self.cls_head.predict_by_feat(logits, data_samples)
        selector = getattr(self.backbone, 'selector', None)
        for sample in predictions:  # grid: (T, H, W) of a view as decoded and reduced
            sample.set_metainfo(dict(token_budget=self.test_budget, head=info['head'],
                                     num_tokens=info['num_tokens'],
                                     grid=tuple(int(d) for d in inputs.shape[-3:]),
                                     selector=type(selector).__name__ if selector else None))
        return predictions

    def _forward(self, inputs: torch.Tensor, stage: str = 'backbone', **kwargs):
        feats, _ = self.extract_feat(inputs, stage=stage, **kwargs)
        return feats

    def budgets_for_training(self) -> Sequence[int]:
        return list(self.train_budgets)
