"""mmflux.compat: untrusted checkpoints are refused with a clear message; trusted ones load."""
import os.path as osp

import pytest
import torch
from mmengine.runner import load_checkpoint

from mmaction.registry import MODELS
from mmflux.compat import TRUST_ENV, UntrustedCheckpointError, safe_load_checkpoint
from conftest import write_tiny_train_config
from robust_utils import CustomPayload, RunsCode, build_video_set, run_tool


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('ckpt')
    build_video_set(str(root), num_plain=2, bad=(), good=())
    config = write_tiny_train_config(root / 'cfg.py', root, lists='list.txt', random_training=True)
    from mmengine.config import Config
    model = MODELS.build(Config.fromfile(config).model)
    marker = str(root / 'code_ran')
    evil = str(root / 'evil.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}, 'payload': RunsCode(marker)}, evil)
    custom = str(root / 'custom.pth')
    torch.save({'state_dict': model.state_dict(), 'payload': CustomPayload()}, custom)
    plain = str(root / 'plain.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'epoch': 1}}, plain)
    return dict(root=root, config=config, model=model, marker=marker, evil=evil, custom=custom,
                plain=plain)


def test_code_running_pickle_refused_by_load_checkpoint(setup, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    with pytest.raises(UntrustedCheckpointError, match=r"would import \['posix.system'\]"):
        load_checkpoint(setup['model'], setup['evil'], map_location='cpu')
    assert not osp.exists(setup['marker'])


def test_code_running_pickle_refused_by_init_recognizer(setup, monkeypatch):
    from mmaction.apis import init_recognizer
    monkeypatch.delenv(TRUST_ENV, raising=False)
    with pytest.raises(UntrustedCheckpointError) as info:
        init_recognizer(setup['config'], setup['evil'], device='cpu')
    message = str(info.value)
    assert 'Refusing to load' in message and TRUST_ENV in message
    assert 'docs/checkpoints.md' in message
    assert not osp.exists(setup['marker'])


@pytest.mark.slow
def test_code_running_pickle_refused_by_test_tool(setup):
    result = run_tool(['tools/test.py', setup['config'], setup['evil'], '--work-dir',
                       str(setup['root'] / 'test_evil')], check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert 'UntrustedCheckpointError: Refusing to load' in output
    assert "['posix.system']" in output and 'MMFLUX_TRUST_CHECKPOINTS=1' in output
    assert not osp.exists(setup['marker'])


def test_custom_class_needs_the_opt_in(setup, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    with pytest.raises(UntrustedCheckpointError, match=r'robust_utils\.CustomPayload'):
        safe_load_checkpoint(setup['custom'], map_location='cpu')
    monkeypatch.setenv(TRUST_ENV, '1')
    loaded = safe_load_checkpoint(setup['custom'], map_location='cpu')
    assert loaded['payload'].value == 3


def test_plain_weights_load_without_opt_in(setup, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    checkpoint = load_checkpoint(setup['model'], setup['plain'], map_location='cpu', strict=True)
    assert checkpoint['meta']['epoch'] == 1


def test_remote_checkpoint_is_refused_too(setup, tmp_path, monkeypatch):
    import shutil

    import torch.hub
    from mmengine.runner.checkpoint import CheckpointLoader
    marker = str(tmp_path / 'remote_code_ran')
    evil = str(tmp_path / 'remote.pth')
    torch.save({'state_dict': {}, 'payload': RunsCode(marker)}, evil)
    monkeypatch.delenv(TRUST_ENV, raising=False)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setattr(torch.hub, 'download_url_to_file',
                        lambda url, dst, *args, **kwargs: shutil.copy(evil, dst))
    with pytest.raises(UntrustedCheckpointError, match='Refusing to load'):
        CheckpointLoader.load_checkpoint('https://example.invalid/remote.pth', map_location='cpu')
    assert not osp.exists(marker), 'unpickling a downloaded checkpoint ran its code'
