"""AdamW parameter groups of the paper: layer-wise lr decay and no decay for 1-D weights."""
from typing import Dict, List, Sequence

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

from mmaction.registry import OPTIM_WRAPPER_CONSTRUCTORS


def layer_level(name: str, depth: int) -> int:
    """Level of a recognizer parameter: 0 = embeddings, i + 1 = block i, depth + 1 = rest."""
    if name.startswith(('backbone.cls_token', 'backbone.pos_embed', 'backbone.patch_embed')):
        return 0
    if name.startswith('backbone.blocks.'):
        return int(name.split('.')[2]) + 1
    return depth + 1


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class FluxLayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay for ViT-style recognizers (FluxViT or MMAction2's ViT).

    ``paramwise_cfg``:
        layer_decay_rate (float): lr scale ``rate ** (depth + 1 - level)``; the
            embeddings get ``rate ** (depth + 1)``, the head 1.0. Default 0.75.
        no_decay_names (Sequence[str]): parameters without weight decay besides
            every 1-D tensor and every bias. Default ``('pos_embed', 'cls_token')``.
    The depth is the length of ``model.backbone.blocks``.
    """

    def add_params(self, params: List[Dict], module: nn.Module, **kwargs) -> None:
        cfg = self.paramwise_cfg or {}
        rate = float(cfg.get('layer_decay_rate', 0.75))
        no_decay_names: Sequence[str] = tuple(cfg.get('no_decay_names', ('pos_embed', 'cls_token')))
        blocks = getattr(getattr(module, 'backbone', None), 'blocks', None)
        if blocks is None:
            raise ValueError('FluxLayerDecayOptimWrapperConstructor needs model.backbone.blocks '
                             f'(got backbone {type(getattr(module, "backbone", None)).__name__}).')
        depth = len(blocks)
        groups: Dict[str, Dict] = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            level = layer_level(name, depth)
            no_decay = (param.ndim == 1 or name.endswith('.bias')
                        or any(name.split('.')[-1] == n for n in no_decay_names))
            key = f'level_{level}_{"no_decay" if no_decay else "decay"}'
            if key not in groups:
                scale = rate**(depth + 1 - level)
                groups[key] = dict(params=[], lr=self.base_lr * scale, lr_scale=scale,
                                   weight_decay=0.0 if no_decay else self.base_wd,
                                   param_names=[])
            groups[key]['params'].append(param)
            groups[key]['param_names'].append(name)
        summary = ', '.join(f'{k}: {len(g["params"])} x lr*{g["lr_scale"]:.4f}' for k, g in sorted(groups.items()))
        print_log(f'layer-wise lr decay {rate} over {depth + 2} levels: {summary}', logger='current')
        for group in groups.values():
            group.pop('param_names')
            params.append(group)
