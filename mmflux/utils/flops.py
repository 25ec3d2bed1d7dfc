"""Multiply-accumulate (MAC) counting of one view of a FluxViT recognizer.

The paper reports "GFLOPs" in the fvcore convention, i.e. multiply-accumulates of
the matrix products (linear layers, convolutions, attention), elementwise work
(norms, activations, the selector's distances, softmax) not counted. Two ways to
get the number are provided:

* :func:`count_macs` runs one view through the model under
  :class:`torch.utils.flop_counter.FlopCounterMode` and halves the FLOPs. By
  default the model is copied onto the ``meta`` device first (no memory, no
  compute, parameters shared by reference so nothing is copied), which works
  because every op of the forward (including the selector's ``argsort`` and the
  positional-table interpolation) has a meta kernel. On ``meta`` scaled dot-product
  attention decomposes into two ``bmm``; on a real CPU it is one fused kernel
  whose FLOPs torch does not count, so a formula for it is registered here.
* :func:`analytic_macs` is the closed form of the spec (section 7.3) used to
  cross-check the counter.

What one view costs (the head the recognizer would use for the budget):
patch embedding on the *full sampled grid*, the selector (0 MACs), the blocks on
the kept tokens (+ cls), one attention-pooling projector, the shared ``fc_norm``
(0 MACs) and one classifier.
"""
import contextlib
import copy
import math
from collections import defaultdict
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn

__all__ = [
    'count_macs', 'count_module_macs', 'analytic_macs', 'count_params', 'PAPER_GMACS',
    'PAPER_GRIDS'
]

# Per-view GMACs printed in the paper (Tables 6-9), unmasked grids at 224^2, 400 classes.
PAPER_GMACS: Dict[str, Dict[int, float]] = {
    'small': {3072: 154, 2048: 83, 1024: 32, 512: 13},
    'base': {3072: 440, 2048: 255, 1024: 108, 512: 49},
}
# The unmasked grid (T, H, W) the paper pairs with each budget.
PAPER_GRIDS: Dict[int, Tuple[int, int, int]] = {
    3072: (12, 224, 224),
    2048: (8, 224, 224),
    1024: (4, 224, 224),
    512: (2, 224, 224),
}

_BREAKDOWN_KEYS = ('patch_embed', 'selector', 'blocks', 'projector', 'fc_norm', 'classifier',
                   'other')


# --------------------------------------------------------------------------- formulas
def _sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of softmax(QK^T)V: two batched products (2 FLOPs per MAC)."""
    *batch_q, s_q, d_q = query_shape
    s_k = key_shape[-2]
    d_v = value_shape[-1]
    batch = math.prod(batch_q)
    return 2 * batch * s_q * s_k * d_q + 2 * batch * s_q * s_k * d_v


def _extra_flop_formulas() -> Dict:
    """Ops FlopCounterMode has no formula for: the fused CPU attention kernels."""
    mapping = {}
    for name in ('_scaled_dot_product_flash_attention_for_cpu',
                 '_scaled_dot_product_fused_attention_overrideable'):
        op = getattr(torch.ops.aten, name, None)
        if op is not None:
            mapping[op] = _sdpa_flops
    return mapping


def analytic_macs(embed_dims: int,
                  depth: int,
                  tokens: int,
                  grid_tokens: Optional[int] = None,
                  num_classes: int = 400,
                  pool_dims: int = 768,
                  mlp_ratio: float = 4.0,
                  patch_dim: int = 3 * 14 * 14,
                  num_prefix_tokens: int = 1) -> Dict:
    """Closed-form MACs of one view (spec section 7.3).

    With C = ``embed_dims``, N = ``tokens`` kept patch tokens and
    n = N + ``num_prefix_tokens`` (1: FluxViT's cls)::

        blocks     = depth * [(4 + 2 * mlp_ratio) * n * C^2 + 2 * n^2 * C]
                     (qkv 3nC^2, proj nC^2, MLP 2 * mlp_ratio * nC^2; QK^T and AV 2n^2C)
        patch      = grid_tokens * patch_dim * C   (all sampled patches, before selection)
        projector  = C^2 + 2nC^2 + pool_dims * C + 2nC
                     (q of the one mean query, k and v of all n tokens, out proj, attention)
        classifier = pool_dims * num_classes

    Args:
        tokens: patch tokens reaching the blocks (after selection).
        grid_tokens: patch tokens of the sampled grid (default ``tokens``: no selection).

    Returns:
        ``dict(gmacs=..., breakdown={part: GMACs})`` with the same part names as
        :func:`count_macs` (the selector and ``fc_norm`` cost 0 MACs).
    """
    if tokens < 1:
        raise ValueError(f'tokens must be >= 1, got {tokens}.')
    grid_tokens = tokens if grid_tokens is None else grid_tokens
    if grid_tokens < tokens:
        raise ValueError(f'grid_tokens ({grid_tokens}) must be >= tokens ({tokens}).')
    C = embed_dims
    n = tokens + num_prefix_tokens
    blocks = depth * ((4 + 2 * mlp_ratio) * n * C * C + 2 * n * n * C)
    patch = grid_tokens * patch_dim * C
    projector = C * C + 2 * n * C * C + pool_dims * C + 2 * n * C
    classifier = pool_dims * num_classes
    parts = dict(patch_embed=patch, selector=0.0, blocks=blocks, projector=projector,
                 fc_norm=0.0, classifier=classifier, other=0.0)
    breakdown = {k: v / 1e9 for k, v in parts.items()}
    return dict(gmacs=sum(parts.values()) / 1e9, breakdown=breakdown)


# --------------------------------------------------------------------------- params
def _numel(tensors) -> int:
    return sum(t.numel() for t in tensors)


def count_params(model: nn.Module, head: Optional[int] = None) -> Dict[str, float]:
    """Parameter counts in millions.

    ``params_m``: the whole recognizer state (``state_dict``: every head, the
    alignment decoders, the full stored positional table, buffers).
    ``params_deploy_m``: what one deployed budget needs: the backbone (with its
    full stored positional table, since any grid is interpolated from it) plus
    ONE projector, the shared ``fc_norm`` and ONE classifier (``head``; default
    0). For a model without a :class:`FluxMultiHead` it equals ``params_m``.
    """
    total = _numel(model.state_dict().values())
    backbone = getattr(model, 'backbone', None)
    cls_head = getattr(model, 'cls_head', None)
    if backbone is None or cls_head is None or not hasattr(cls_head, 'clip_projector'):
        return dict(params_m=total / 1e6, params_deploy_m=total / 1e6)
    h = 0 if head is None else head
    deploy = _numel(backbone.state_dict().values())
    deploy += _numel(cls_head.clip_projector[h].state_dict().values())
    deploy += _numel(cls_head.fc_norm.state_dict().values())
    deploy += _numel(cls_head.head[h].state_dict().values())
    if getattr(model, 'neck', None) is not None:
        deploy += _numel(model.neck.state_dict().values())
    return dict(params_m=total / 1e6, params_deploy_m=deploy / 1e6)


# --------------------------------------------------------------------------- counting
@contextlib.contextmanager
def _flop_counting(model: nn.Module):
    """``no_grad`` + a FlopCounterMode (with the extra formulas), parameters frozen.

    FlopCounterMode's module tracker hooks every input that requires grad; views of
    parameters taken under no_grad still say they do, which breaks its hooks, so
    parameters are frozen for the count and restored afterwards.
    """
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False, custom_mapping=_extra_flop_formulas())
    frozen = [p for p in model.parameters() if p.requires_grad]
    for param in frozen:
        param.requires_grad_(False)
    try:
        with torch.no_grad(), counter:
            yield counter
    finally:
        for param in frozen:
            param.requires_grad_(True)


def _meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` on the meta device, without copying any parameter data."""
    memo = {}
    for tensor in list(model.parameters()) + list(model.buffers()):
        meta = torch.empty_like(tensor, device='meta')
        memo[id(tensor)] = nn.Parameter(meta, requires_grad=False) if isinstance(
            tensor, nn.Parameter) else meta
    for module in model.modules():
        cache = getattr(module, '_pos_cache', None)
        if isinstance(cache, dict):  # FluxViT's per-grid positional cache: start empty
            memo[id(cache)] = {}
    clone = copy.deepcopy(model, memo)
    return clone.requires_grad_(False)


def _model_dtype(model: nn.Module) -> torch.dtype:
    for param in model.parameters():
        if param.is_floating_point():
            return param.dtype
    return torch.float32


def _model_device(model: nn.Module) -> torch.device:
    for param in model.parameters():
        return param.device
    return torch.device('cpu')


def _category(name: str) -> Optional[str]:
    """Breakdown part of a module path as recorded by the flop counter."""
    parts = name.split('.')
    if 'patch_embed' in parts:
        return 'patch_embed'
    if 'selector' in parts:
        return 'selector'
    if 'blocks' in parts:
        return 'blocks'
    if 'clip_projector' in parts:
        return 'projector'
    if 'fc_norm' in parts:
        return 'fc_norm'
    if 'head' in parts and parts[-2:-1] == ['head']:
        return 'classifier'
    return None


def _breakdown(counts: Dict[str, Dict]) -> Dict[str, float]:
    """GMACs per part from FlopCounterMode's per-module counts.

    The counter attributes every op to all its enclosing modules, so only the
    outermost module of each part is summed (``blocks.3`` but not
    ``blocks.3.attn``); whatever remains of the global total is ``other``.
    """
    parts = defaultdict(float)
    for name, ops in counts.items():
        if name == 'Global':
            continue
        cat = _category(name)
        if cat is None:
            continue
        # outermost module of the part: the path up to and including the part's key
        segs = name.split('.')
        key = {'patch_embed': 'patch_embed', 'selector': 'selector', 'blocks': 'blocks',
               'projector': 'clip_projector', 'fc_norm': 'fc_norm', 'classifier': 'head'}[cat]
        idx = segs.index(key)
        depth_needed = idx + (2 if key in ('blocks', 'clip_projector', 'head') else 1)
        if len(segs) != depth_needed:
            continue
        parts[cat] += sum(ops.values()) / 2e9
    total = sum(counts.get('Global', {}).values()) / 2e9
    result = {k: parts.get(k, 0.0) for k in _BREAKDOWN_KEYS}
    result['other'] = max(0.0, total - sum(v for k, v in result.items() if k != 'other'))
    return result


def count_macs(model: nn.Module,
               frames: int,
               height: int,
               width: int,
               budget: Optional[int] = None,
               head: Optional[int] = None,
               device: Optional[str] = 'meta',
               in_channels: int = 3) -> Dict:
    """MACs of ONE view (batch 1) of ``model`` at ``budget`` on a T x H x W grid.

    Args:
        model: a :class:`FluxRecognizer` (backbone + the head the recognizer would
            use for the kept token count, or ``head``), or a bare budget-aware
            backbone (``return_output=True``) such as :class:`FluxViT`
            (backbone only). Token counts are what the backbone reports.
        frames, height, width: the sampled grid of the view (pixels).
        budget: patch tokens kept (None: all, no selection).
        head: force a head of a :class:`FluxMultiHead`.
        device: ``'meta'`` (default; shape-only, instant, no memory) or ``None``
            to run a zero input on the model's own device and dtype.

    Returns:
        dict with ``gmacs`` (1e9 MACs), ``params_m`` / ``params_deploy_m``
        (see :func:`count_params`), ``tokens`` (patch tokens after selection, prefix
        tokens such as cls excluded), ``grid_tokens`` (patch tokens of the sampled grid), ``head``
        (index used or None), ``grid`` and ``budget``, and ``breakdown`` (GMACs of
        ``patch_embed``, ``selector``, ``blocks``, ``projector``, ``fc_norm``,
        ``classifier``, ``other``).
    """
    for name, value in (('frames', frames), ('height', height), ('width', width)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f'{name} must be a positive int, got {value!r}.')
    was_training = model.training
    run_model = _meta_copy(model) if device == 'meta' else model
    run_model.eval()
    dev = torch.device('meta') if device == 'meta' else (
        torch.device(device) if device is not None else _model_device(model))
    x = torch.zeros(1, in_channels, frames, height, width, device=dev, dtype=_model_dtype(model))

    used_head = None
    try:
        with _flop_counting(run_model) as counter:
            if hasattr(run_model, 'select_head') and hasattr(run_model, 'extract_feat'):
                # budget=None must mean "all tokens", not "the config's test budget"
                saved_cfg = run_model.test_cfg
                run_model.test_cfg = dict(saved_cfg or {}, token_budget=budget, head=head)
                try:
                    _, info = run_model.extract_feat(x, stage='head')
                finally:
                    run_model.test_cfg = saved_cfg
                used_head, tokens, grid_tokens = info['head'], info['num_tokens'], info['grid_tokens']
            else:
                out = run_model(x, budget=budget, return_output=True)
                tokens, grid_tokens = out.num_kept, out.grid_tokens
    finally:
        if run_model is model:
            model.train(was_training)
    counts = counter.get_flop_counts()
    gmacs = counter.get_total_flops() / 2e9
    params = count_params(model, used_head)
    return dict(gmacs=gmacs, **params, tokens=int(tokens), grid_tokens=grid_tokens,
                grid=[frames, height, width], budget=budget, head=used_head,
                breakdown=_breakdown(counts))


def count_module_macs(module: nn.Module, input_shape: Sequence[int], device: Optional[str] = 'meta',
                      **forward_kwargs) -> float:
    """GMACs of ``module(zeros(input_shape), **forward_kwargs)`` (any module).

    Same conventions as :func:`count_macs` (meta device by default, fused CPU
    attention counted), for models that are not FluxViT recognizers, e.g.
    MMAction2's ``VisionTransformer`` in the benchmark.
    """
    run = _meta_copy(module) if device == 'meta' else module
    was_training = module.training
    run.eval()
    dev = torch.device('meta') if device == 'meta' else (
        torch.device(device) if device is not None else _model_device(module))
    x = torch.zeros(*input_shape, device=dev, dtype=_model_dtype(module))
    try:
        with _flop_counting(run) as counter:
            run(x, **forward_kwargs)
    finally:
        module.train(was_training)
    return counter.get_total_flops() / 2e9


def analytic_for_model(model: nn.Module, tokens: int, grid_tokens: int) -> Optional[Dict]:
    """:func:`analytic_macs` with the sizes read off a FluxViT recognizer (None if not one)."""
    backbone = getattr(model, 'backbone', None)
    cls_head = getattr(model, 'cls_head', None)
    if backbone is None or cls_head is None or not hasattr(backbone, 'arch_settings'):
        return None
    return analytic_macs(
        backbone.embed_dims, backbone.depth, tokens, grid_tokens,
        num_classes=cls_head.num_classes, pool_dims=getattr(cls_head, 'pool_dims', 768),
        mlp_ratio=backbone.arch_settings['mlp_ratio'], patch_dim=backbone.patch_embed.patch_dim,
        num_prefix_tokens=backbone.num_prefix_tokens)
