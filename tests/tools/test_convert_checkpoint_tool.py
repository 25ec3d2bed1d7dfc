"""tools/convert_checkpoint.py end to end, loaded by MMAction2's init_recognizer."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmaction.apis import init_recognizer

from conftest import REPO_ROOT, official_random_state

pytestmark = pytest.mark.slow

TOOL = osp.join(REPO_ROOT, 'tools', 'convert_checkpoint.py')
CONFIG = osp.join(REPO_ROOT, 'configs', 'fluxvit', 'fluxvit-s14_k400.py')


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, cwd=REPO_ROOT)


def test_convert_then_init_recognizer(tmp_path):
    state = official_random_state('small', torch.bfloat16)
    src = tmp_path / 'official.pth'
    torch.save({'model': state}, src)
    dst = tmp_path / 'converted.pth'
    result = run_tool(str(src), str(dst))
    assert result.returncode == 0, result.stderr
    assert 'FluxViT-small' in result.stdout
    model = init_recognizer(CONFIG, str(dst), device='cpu')
    loaded = model.state_dict()
    torch.testing.assert_close(loaded['backbone.blocks.11.attn.qkv.weight'],
                               state['blocks.11.attn.qkv.weight'].float())
    torch.testing.assert_close(loaded['cls_head.head.2.bias'], state['head.2.bias'].float())


def test_tool_refuses_wrong_architecture(tmp_path):
    src = tmp_path / 'official.pth'
    torch.save(official_random_state('small'), src)
    result = run_tool(str(src), str(tmp_path / 'out.pth'), '--config',
                      osp.join(REPO_ROOT, 'configs', 'fluxvit', 'fluxvit-b14_k400.py'))
    assert result.returncode != 0
    assert 'shape mismatches' in result.stderr and 'backbone.' in result.stderr
    assert not (tmp_path / 'out.pth').exists()
