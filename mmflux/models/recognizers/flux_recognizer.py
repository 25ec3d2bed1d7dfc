"""Recognizer that trains several token budgets at once and tests at any budget."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from mmaction.models.recognizers.base import BaseRecognizer
from mmaction.registry import MODELS
from mmaction.utils import OptSampleList, SampleList
from ...evaluation.to_config_mixin import TokenOptimizationConfigMixin
from ..selectors import check_budget


def soft_targets(data_samples: SampleList, num_classes: int, smoothing: float = 0.0,
                 device=None) -> torch.Tensor:
    """(N, num_classes) soft targets from hard labels or already-mixed soft labels."""
    rows = []
    for sample in data_samples:
        label = torch.as_tensor(sample.gt_label)
        if label.numel() == num_classes and label.is_floating_point():
            rows.append(label.float().reshape(num_classes))
        else:
            index = int(label.reshape(-1)[0])
            if not 0 <= index < num_classes:
                raise ValueError(f'label {index} is out of range for {num_classes} classes.')
            rows.append(F.one_hot(torch.tensor(index), num_classes).float())
    targets = torch.stack(rows).to(device)
    if smoothing > 0:
        targets = targets * (1.0 - smoothing) + smoothing / num_classes
    return targets


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()


@MODELS.register_module()
class FluxRecognizer(TokenOptimizationConfigMixin, BaseRecognizer):
    """Video recognizer for budget-flexible backbones (FluxViT, or any backbone whose
    ``forward(x, budget=...)`` returns tokens) and a :class:`FluxMultiHead`.

    Training (``train_cfg``):
        budgets: token budgets run on every batch (Flux-Multi: ``(3072, 2048,
            1024)``; Flux-Single: one budget). A budget at or above the batch's
            token count keeps every token.
        heads: the head trained at each budget (default ``0, 1, ...``).
        align_weight: weight of the smooth-L1 alignment of every smaller budget's
            projected feature to the detached feature of the first budget
            (0 disables it; Flux-Single has none).
        Loss terms are logged as ``loss_cls_<head>`` and ``loss_align_<head>``.

    Testing (``test_cfg``):
        token_budget: patch tokens kept per view (None: all).
        head: force a head; default the head trained for the budget nearest to
            the number of tokens actually kept.
        max_testing_views: run at most this many views per backbone call.
    """

    def __init__(self, backbone: Dict, cls_head: Dict, neck: Optional[Dict] = None,
                 train_cfg: Optional[Dict] = None, test_cfg: Optional[Dict] = None,
                 data_preprocessor: Optional[Dict] = None) -> None:
        super().__init__(backbone, cls_head=cls_head, neck=neck, train_cfg=train_cfg,
                         test_cfg=test_cfg, data_preprocessor=data_preprocessor)
        self.train_budgets, self.train_heads = self._parse_train_cfg(train_cfg or {})
        self.align_weight = float((train_cfg or {}).get('align_weight', 1.0))
        self._check_test_cfg(test_cfg or {})

    # ------------------------------------------------------------ config
    def _parse_train_cfg(self, cfg: Dict) -> Tuple[List[int], List[int]]:
        num_heads = self.cls_head.num_heads
        budgets = list(cfg.get('budgets', self.cls_head.head_budgets))
        heads = list(cfg.get('heads', range(len(budgets))))
        for budget in budgets:
            if budget is not None:
                try:
                    check_budget(budget)
                except ValueError as err:
                    raise ValueError(f'model.train_cfg.budgets: {err}') from None
        if len(heads) != len(budgets):
            raise ValueError(f'model.train_cfg.heads {heads} must give one head per budget '
                             f'in model.train_cfg.budgets {budgets}.')
        for head in heads:
            if not isinstance(head, int) or not 0 <= head < num_heads:
                raise ValueError(f'model.train_cfg.heads contains {head!r} but cls_head has '
                                 f'{num_heads} heads (0..{num_heads - 1}); set '
                                 'cls_head.head_budgets to one budget per head.')
        return budgets, heads

    def _check_test_cfg(self, cfg: Dict) -> None:
        budget = cfg.get('token_budget')
        if budget is not None:
            try:
                check_budget(budget)
            except ValueError as err:
                raise ValueError(f'model.test_cfg.token_budget: {err}') from None
        head = cfg.get('head')
        if head is not None:
            try:
                self.cls_head.check_head(head)
            except ValueError as err:
                raise ValueError(f'model.test_cfg.head: {err}') from None

    @property
    def test_budget(self) -> Optional[int]:
        return (self.test_cfg or {}).get('token_budget')

    # ------------------------------------------------------------ features
    def _backbone(self, x: torch.Tensor, budget: Optional[int]) -> torch.Tensor:
        return self.backbone(x, budget=budget)

    def extract_feat(self, inputs: torch.Tensor, stage: str = 'backbone',
                     data_samples: OptSampleList = None, test_mode: bool = False,
                     budget: Optional[int] = None, head: Optional[int] = None):
        """Tokens (stage ``'backbone'``) or logits (``'head'``) at the test budget.

        ``inputs``: (N, V, C, T, H, W) views or (N, C, T, H, W).
        """
        if inputs.dim() == 6:
            inputs = inputs.reshape((-1, ) + inputs.shape[2:])
        cfg = self.test_cfg or {}
        budget = budget if budget is not None else cfg.get('token_budget')
        chunk = cfg.get('max_testing_views') or inputs.shape[0]
        tokens = torch.cat([self._backbone(part, budget) for part in inputs.split(chunk)])
        if stage == 'backbone':
            return tokens, {}
        head = self.select_head(tokens.shape[1] - 1, head)
        return self.cls_head(tokens, head), dict(head=head, num_tokens=tokens.shape[1] - 1)

    def select_head(self, num_tokens: int, head: Optional[int] = None) -> int:
        if head is None:
            head = (self.test_cfg or {}).get('head')
        if head is None:
            return self.cls_head.nearest_head(num_tokens)
        return self.cls_head.check_head(head)

    # ------------------------------------------------------------ modes
    def loss(self, inputs: torch.Tensor, data_samples: SampleList, **kwargs) -> Dict:
        """Flux-Multi: classification loss per budget plus feature alignment."""
        num_views = inputs.shape[1] if inputs.dim() == 6 else 1
        x = inputs.reshape((-1, ) + inputs.shape[2:]) if inputs.dim() == 6 else inputs
        targets = soft_targets(data_samples, self.cls_head.num_classes,
                               self.cls_head.label_smooth_eps, device=x.device)
        if num_views > 1:  # repeated augmentation: views of a sample share its target
            targets = targets.repeat_interleave(num_views, dim=0)
        losses: Dict[str, torch.Tensor] = {}
        teacher = None
        for i, (budget, head) in enumerate(zip(self.train_budgets, self.train_heads)):
            tokens = self._backbone(x, budget)
            pooled = self.cls_head.pool(tokens, head)
            logits = self.cls_head.classify(pooled, head)
            losses[f'loss_cls_{head}'] = soft_cross_entropy(logits, targets)
            if i == 0:
                teacher = F.normalize(pooled.detach().float(), dim=-1)
            elif self.align_weight > 0 and head > 0:
                student = F.normalize(self.cls_head.align(pooled, head).float(), dim=-1)
                losses[f'loss_align_{head}'] = self.align_weight * F.smooth_l1_loss(
                    student, teacher, beta=1.0)
        return losses

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
