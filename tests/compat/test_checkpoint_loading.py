"""mmflux.compat.checkpoint_loading: what plain mmengine writes loads and resumes after
``import mmflux``; what mmflux writes loads without it; torch's opt-out is honoured;
pickles that would run code are refused before they run."""
import collections
import glob
import os
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import Runner, load_checkpoint

from mmflux.compat import TORCH_OPT_OUT_ENV, UntrustedCheckpointError, safe_load_checkpoint
from mmflux.engine.runner import FluxRunner
from robust_utils import CustomPayload, RunsCode
from toy_mmengine_run import ToyRegressor, runner_kwargs

HERE = osp.dirname(osp.abspath(__file__))


@pytest.fixture(autouse=True)
def no_opt_out(monkeypatch):
    monkeypatch.delenv(TORCH_OPT_OUT_ENV, raising=False)


def _plain_env(**extra) -> dict:
    """A subprocess environment in which mmflux is not importable by accident."""
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', TORCH_OPT_OUT_ENV)}
    env.update(OMP_NUM_THREADS='1', **extra)
    return env


def _run_plain(*args, **extra_env) -> None:
    result = subprocess.run([sys.executable, osp.join(HERE, 'toy_mmengine_run.py'), *args],
                            env=_plain_env(**extra_env), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


class _Reduces:
    """Pickles as ``func(*args)``: to write the pickles an attacker would."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


# ------------------------------------------------------------------ fast, in process
def test_history_buffer_as_mmengine_pickles_it(tmp_path):
    """mmengine pickles HistoryBuffer.mean & co. through builtins.getattr; they load back."""
    buffer = HistoryBuffer([1.0, 2.0, 6.0], [1, 1, 1])
    path = str(tmp_path / 'hub.pth')
    torch.save({'buffer': buffer, 'step': np.int64(7), 'lr': np.float64(0.5)}, path)
    assert 'builtins.getattr' in torch.serialization.get_unsafe_globals_in_checkpoint(path)
    loaded = safe_load_checkpoint(path)
    assert loaded['buffer'].statistics('mean') == 3.0
    assert loaded['buffer'].statistics('max') == 6.0
    assert loaded['buffer'].statistics('current') == 6.0
    assert loaded['step'] == 7 and loaded['lr'] == 0.5


def test_model_zoo_format_loads(tmp_path):
    """MMAction2's model zoo format: ``meta`` and ``state_dict`` (tools/deployment/publish_model.py)."""
    torch.manual_seed(3)
    source = ToyRegressor()
    path = str(tmp_path / 'zoo.pth')
    meta = dict(epoch=12, iter=480, seed=np.int64(42), experiment_name='tsn', time='20230101',
                mmengine_version='0.10.7', dataset_meta=dict(classes=('a', 'b')))
    torch.save(dict(meta=meta, state_dict=collections.OrderedDict(source.state_dict())), path)
    model = ToyRegressor()
    checkpoint = load_checkpoint(model, path, map_location='cpu', strict=True)
    assert checkpoint['meta']['seed'] == 42 and checkpoint['meta']['iter'] == 480
    for name, tensor in source.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name


def test_code_running_pickle_refused(tmp_path):
    marker = str(tmp_path / 'code_ran')
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'payload': RunsCode(marker)}, path)
    with pytest.raises(UntrustedCheckpointError, match=r"would import \['posix.system'\]"):
        load_checkpoint(ToyRegressor(), path, map_location='cpu')
    assert not osp.exists(marker)


@pytest.mark.parametrize('owner,name', [(HistoryBuffer, '__init__'), (HistoryBuffer, 'update'),
                                        (collections.OrderedDict, '__class__'),
                                        (np.ndarray, 'tofile')])
def test_getattr_other_than_a_statistic_refused(tmp_path, owner, name):
    path = str(tmp_path / 'getattr.pth')
    torch.save({'x': _Reduces(getattr, owner, name)}, path)
    with pytest.raises(UntrustedCheckpointError, match=rf"getattr\(.*'{name}'\)"):
        safe_load_checkpoint(path)


def test_refusal_is_torchs_error_type(tmp_path):
    """Code that catches torch's refusal (pickle.UnpicklingError) still catches mmflux's."""
    path = str(tmp_path / 'eval.pth')
    torch.save({'x': _Reduces(eval, '1 + 1')}, path)
    with pytest.raises(pickle.UnpicklingError, match=r"builtins.eval"):
        safe_load_checkpoint(path)


def test_torch_opt_out_is_honoured(tmp_path, monkeypatch):
    path = str(tmp_path / 'custom.pth')
    torch.save({'payload': CustomPayload(5)}, path)
    with pytest.raises(UntrustedCheckpointError, match=r'robust_utils\.CustomPayload') as info:
        load_checkpoint(ToyRegressor(), path, map_location='cpu')
    assert f'{TORCH_OPT_OUT_ENV}=1' in str(info.value)
    monkeypatch.setenv(TORCH_OPT_OUT_ENV, '1')
    with pytest.warns(UserWarning, match=TORCH_OPT_OUT_ENV):  # torch's own notice
        assert safe_load_checkpoint(path)['payload'].value == 5


def test_users_own_safe_globals_survive_a_load(tmp_path):
    path = str(tmp_path / 'hub.pth')
    torch.save({'buffer': HistoryBuffer([1.0], [1])}, path)
    before = torch.serialization.get_safe_globals()
    torch.serialization.add_safe_globals([HistoryBuffer, CustomPayload])
    try:
        safe_load_checkpoint(path)
        assert {HistoryBuffer, CustomPayload} <= set(torch.serialization.get_safe_globals())
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)
    assert HistoryBuffer not in torch.serialization.get_safe_globals()  # the allowlist was scoped


def test_trusted_file_loads_fully(tmp_path):
    path = str(tmp_path / 'custom.pth')
    torch.save({'payload': CustomPayload(4)}, path)
    assert safe_load_checkpoint(path, trusted=True)['payload'].value == 4


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing.pth'):
        safe_load_checkpoint(str(tmp_path / 'nothing.pth'))


@pytest.fixture(scope='module')
def evil_setup(tmp_path_factory):
    """A tiny mmflux config and a checkpoint whose unpickling would create a marker file."""
    from conftest import write_tiny_train_config
    from robust_utils import build_video_set
    root = tmp_path_factory.mktemp('evil')
    build_video_set(str(root), num_plain=2, bad=(), good=())
    config = write_tiny_train_config(root / 'cfg.py', root, lists='list.txt')
    marker = str(root / 'code_ran')
    evil = str(root / 'evil.pth')
    torch.save({'state_dict': {}, 'meta': {}, 'payload': RunsCode(marker)}, evil)
    return dict(root=root, config=config, evil=evil, marker=marker)


def test_code_running_pickle_refused_by_init_recognizer(evil_setup):
    from mmaction.apis import init_recognizer
    with pytest.raises(UntrustedCheckpointError, match='Refusing to load') as info:
        init_recognizer(evil_setup['config'], evil_setup['evil'], device='cpu')
    assert 'docs/checkpoints.md' in str(info.value)
    assert not osp.exists(evil_setup['marker'])


@pytest.mark.slow
def test_code_running_pickle_refused_by_test_tool(evil_setup):
    from robust_utils import run_tool
    result = run_tool(['tools/test.py', evil_setup['config'], evil_setup['evil'], '--work-dir',
                       str(evil_setup['root'] / 'test_evil')], check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert 'UntrustedCheckpointError: Refusing to load' in output
    assert "['posix.system']" in output and f'{TORCH_OPT_OUT_ENV}=1' in output
    assert not osp.exists(evil_setup['marker'])


# ------------------------------------------------------- slow: plain mmengine in a subprocess
@pytest.fixture(scope='module')
def plain_run(tmp_path_factory):
    """Checkpoints written by plain mmengine (no mmflux in that process)."""
    work = str(tmp_path_factory.mktemp('plain_mmengine'))
    _run_plain(work)
    return work


def _weights(path: str) -> dict:
    return safe_load_checkpoint(path, map_location='cpu')['state_dict']


@pytest.mark.slow
def test_plain_mmengine_checkpoint_resumes_after_import_mmflux(plain_run, tmp_path):
    """Resumed from epoch 1, the run ends with the weights and loss log of the uninterrupted run:
    only if the optimizer's momentum, the lr schedule and the message hub came back."""
    runner = Runner(**runner_kwargs(str(tmp_path), scope='mmaction'), resume=True,
                    load_from=osp.join(plain_run, 'epoch_1.pth'))
    runner.train()
    assert runner.epoch == 2
    uninterrupted = safe_load_checkpoint(osp.join(plain_run, 'epoch_2.pth'))
    for name, tensor in uninterrupted['state_dict'].items():
        assert torch.equal(runner.model.state_dict()[name], tensor), name
    expected = uninterrupted['message_hub']['log_scalars']['train/loss']
    resumed = runner.message_hub.get_scalar('train/loss')
    assert len(resumed.data[0]) == 8  # 4 iterations of epoch 1 (restored) + 4 of epoch 2
    np.testing.assert_array_equal(resumed.data[0], expected.data[0])
    assert resumed.statistics('mean') == expected.statistics('mean')


@pytest.mark.slow
def test_mmaction2_published_checkpoint_loads(plain_run):
    """The output of MMAction2's own publish_model.py loads strictly into the model."""
    zoo = glob.glob(osp.join(plain_run, 'zoo_*.pth'))[0]
    model = ToyRegressor()
    checkpoint = load_checkpoint(model, zoo, map_location='cpu', strict=True)
    assert set(checkpoint) == {'meta', 'state_dict'} and checkpoint['meta']['epoch'] == 2
    for name, tensor in _weights(osp.join(plain_run, 'epoch_2.pth')).items():
        assert torch.equal(model.state_dict()[name], tensor), name


@pytest.mark.slow
def test_flux_runner_checkpoint_resumes_without_mmflux(plain_run, tmp_path):
    """What FluxRunner writes has no mmflux type in it and resumes in plain mmengine
    (which, under torch >= 2.6, needs torch's opt-out for any training checkpoint)."""
    work = str(tmp_path / 'flux')
    FluxRunner(**runner_kwargs(work, scope='mmaction')).train()
    for name, tensor in _weights(osp.join(plain_run, 'epoch_2.pth')).items():
        assert torch.equal(_weights(osp.join(work, 'epoch_2.pth'))[name], tensor), name
    written = osp.join(work, 'epoch_1.pth')
    asked = torch.serialization.get_unsafe_globals_in_checkpoint(written)
    assert asked and not [name for name in asked if 'mmflux' in name]
    resumed = str(tmp_path / 'plain_resumed')
    _run_plain(resumed, '--resume-from', written, **{TORCH_OPT_OUT_ENV: '1'})
    for name, tensor in _weights(osp.join(plain_run, 'epoch_2.pth')).items():
        assert torch.equal(_weights(osp.join(resumed, 'epoch_2.pth'))[name], tensor), name
