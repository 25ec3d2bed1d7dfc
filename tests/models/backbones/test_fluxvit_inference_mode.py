"""A FluxViT whose parameters are inference tensors still runs (positional cache key)."""
import copy

import torch
from mmaction.registry import MODELS

from conftest import tiny_backbone_cfg


def test_parameters_made_under_inference_mode():
    model = MODELS.build(tiny_backbone_cfg(arch=dict(depth=1, pos_frames=8, pos_side=16))).eval()
    x = torch.randn(1, 3, 2, 28, 28)
    with torch.inference_mode():
        converted = copy.deepcopy(model).double()  # inference-tensor parameters
        out = converted(x.double())
        again = converted(x.double())  # cached positions
    assert out.shape == (1, 9, 64)
    torch.testing.assert_close(out, again)
