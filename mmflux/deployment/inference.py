"""Recognise a video with an exported model through its config's own test pipeline."""
from typing import Dict, Optional, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope

from mmaction.registry import MODELS
from .runtime import RuntimeModel, build_runtime_model


def video_views(cfg: Config, video: str) -> torch.Tensor:
    """(V, C, T, H, W) normalised views of ``video`` by ``cfg``'s test pipeline and preprocessor."""
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    pipeline = Compose(cfg.test_pipeline)
    data = pipeline(dict(filename=video, label=-1, start_index=0, modality='RGB'))
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    inputs = preprocessor(pseudo_collate([data]), False)['inputs']  # (1, V, C, T, H, W)
    return inputs.reshape((-1, ) + inputs.shape[2:])


def inference_exported(model: Union[str, RuntimeModel], video: str,
                       budget: Optional[int] = None) -> Dict:
    """Decode, cut views, normalise, run at ``budget`` (None: the file's default) and
    average views as ``inference_recognizer`` does.

    Returns ``pred_score`` (num_classes,) tensor, per-view ``logits``, ``kept``
    indices, the export ``meta`` and the budget's ``token_budget``, ``head``,
    ``num_tokens``.
    """
    runtime = build_runtime_model(model) if isinstance(model, str) else model
    meta = runtime.meta
    cfg = Config.fromstring(meta['config'], file_format='.py')
    views = video_views(cfg, video)
    chunk = meta.get('max_testing_views') or views.shape[0]
    outputs = [runtime(part, budget) for part in views.split(chunk)]
    logits = np.concatenate([o[0] for o in outputs])
    kept = np.concatenate([o[1] for o in outputs])
    # the configured head's own averaging rule (``average_clips``: prob / score / None),
    # through MMAction2's BaseHead.average_clip on the head the config builds
    head = MODELS.build(cfg.model.cls_head)
    scores = head.average_clip(torch.from_numpy(logits), num_segs=views.shape[0])
    scores = scores.reshape(-1, scores.shape[-1]).mean(0) if scores.dim() > 2 else scores[0]
    return dict(pred_score=scores, logits=logits, kept=kept, meta=meta,
                **runtime.budget_info(budget))
