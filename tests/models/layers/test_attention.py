"""FluxAttention and FluxBlock: one plain forward, checked against an independent float64 oracle."""
import math

import torch
from mmaction.registry import MODELS

from conftest import tiny_backbone_cfg
from mmflux.models.layers import FluxAttention, FluxBlock


def rms(x, weight, eps=1e-6):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def attention_oracle(attn: FluxAttention, x: torch.Tensor) -> torch.Tensor:
    """The layer written out in float64 with an explicit softmax, head by head."""
    p = {k: v.double() for k, v in attn.state_dict().items()}
    x = x.double()
    B, N, C = x.shape
    H, d = attn.num_heads, attn.head_dim
    q, k, v = (x @ p['qkv.weight'].T).split(C, dim=-1)
    q, k = rms(q, p['q_norm.weight']), rms(k, p['k_norm.weight'])
    out = torch.empty(B, N, C, dtype=torch.float64)
    for b in range(B):
        for h in range(H):
            cols = slice(h * d, (h + 1) * d)
            scores = q[b, :, cols] @ k[b, :, cols].T / math.sqrt(d)
            out[b, :, cols] = torch.softmax(scores, dim=-1) @ v[b, :, cols]
    lpe_w = p['lpe.depthwise_conv.weight'].view(-1)
    out = out + v * lpe_w + p['lpe.depthwise_conv.bias']
    return out @ p['proj.weight'].T + p['proj.bias']


def randomized(module, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.3 + (param.dim() == 1))
    return module.eval()


def test_attention_matches_the_oracle():
    attn = randomized(FluxAttention(24, num_heads=3))
    x = torch.randn(2, 9, 24, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        out = attn(x)
    torch.testing.assert_close(out.double(), attention_oracle(attn, x), atol=2e-5, rtol=2e-5)


def test_block_is_the_residual_sum_of_its_parts():
    block = randomized(FluxBlock(24, num_heads=3, layer_scale_init_value=0.5))
    x = torch.randn(2, 9, 24, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        out = block(x).double()
    p = {k: v.double() for k, v in block.state_dict().items()}
    xd = x.double()
    h = xd + p['ls1.gamma'] * attention_oracle(block.attn, rms(xd, p['norm1.weight']).float())
    hidden = torch.nn.functional.gelu(rms(h, p['norm2.weight']) @ p['mlp.fc1.weight'].T
                                      + p['mlp.fc1.bias'], approximate='tanh')
    ref = h + p['ls2.gamma'] * (hidden @ p['mlp.fc2.weight'].T + p['mlp.fc2.bias'])
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def test_inference_graph_has_only_plain_ops():
    """Eval inference records the same ATen ops a tracer or exporter sees: no oneDNN private op."""
    model = MODELS.build(tiny_backbone_cfg()).eval()
    x = torch.randn(1, 3, 2, 56, 56)
    with torch.inference_mode(), torch.profiler.profile() as prof:
        model(x, budget=24)
    names = {event.key for event in prof.key_averages()}
    assert 'aten::scaled_dot_product_attention' in names and 'aten::linear' in names
    assert not any('mkldnn' in name for name in names), sorted(names)
