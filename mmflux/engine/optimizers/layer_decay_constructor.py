"""AdamW parameter groups of the paper: layer-wise lr decay and no decay for 1-D weights."""
from typing import Dict, List, Sequence

from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

from mmaction.registry import OPTIM_WRAPPER_CONSTRUCTORS


def layer_levels(backbone: nn.Module) -> Dict[int, int]:
    """``id(parameter) -> level`` by module identity: 0 = embeddings, i + 1 = block i.

    The backbone says which parameters come before its blocks
    (``embedding_parameters()``) and lists its blocks in order (``blocks``), so
    the levels do not depend on how a wrapper names them (``blocks.3`` in
    FluxViT, ``vit.blocks.3`` in the wrapped MMAction2 ViT). Parameters not
    listed (norms, the head) are at ``len(blocks) + 1``.
    """
    blocks = getattr(backbone, 'blocks', None)
    embeddings = getattr(backbone, 'embedding_parameters', None)
    if blocks is None or not callable(embeddings):
        raise ValueError(
            'FluxLayerDecayOptimWrapperConstructor needs a backbone with ordered `blocks` and '
            f'`embedding_parameters()`, got {type(backbone).__name__}; fix: use a Flux backbone '
            '(FluxViT, SelectiveVisionTransformer) or the DefaultOptimWrapperConstructor.')
    levels = {id(p): 0 for p in embeddings()}
    for i, block in enumerate(blocks):
        levels.update({id(p): i + 1 for p in block.parameters()})
    return levels


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class FluxLayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay for ViT-style recognizers (FluxViT or MMAction2's ViT).

    ``paramwise_cfg``:
        layer_decay_rate (float): lr scale ``rate ** (depth + 1 - level)``; the
            embeddings get ``rate ** (depth + 1)``, the head 1.0. Default 0.75.
        no_decay_names (Sequence[str]): parameters without weight decay besides
            every 1-D tensor and every bias. Default ``('pos_embed', 'cls_token')``.
    Levels come from :func:`layer_levels` of ``model.backbone``.
    """

    def add_params(self, params: List[Dict], module: nn.Module, **kwargs) -> None:
        cfg = self.paramwise_cfg or {}
        rate = float(cfg.get('layer_decay_rate', 0.75))
        no_decay_names: Sequence[str] = tuple(cfg.get('no_decay_names', ('pos_embed', 'cls_token')))
        backbone = getattr(module, 'backbone', None)
        levels = layer_levels(backbone)
        depth = len(backbone.blocks)
        groups: Dict[str, Dict] = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            level = levels.get(id(param), depth + 1)
            no_decay = (param.ndim == 1 or name.endswith('.bias')
                        or any(name.split('.')[-1] == n for n in no_decay_names))
            key = f'level_{level}_{"no_decay" if no_decay else "decay"}'
            if key not in groups:
                scale = rate**(depth + 1 - level)
                groups[key] = dict(params=[], lr=self.base_lr * scale, lr_scale=scale,
                                   weight_decay=0.0 if no_decay else self.base_wd)
            groups[key]['params'].append(param)
        summary = ', '.join(f'{k}: {len(g["params"])} x lr*{g["lr_scale"]:.4f}'
                            for k, g in sorted(groups.items()))
        MMLogger.get_current_instance().info(
            f'layer-wise lr decay {rate} over {depth + 2} levels: {summary}')
        params.extend(groups.values())
