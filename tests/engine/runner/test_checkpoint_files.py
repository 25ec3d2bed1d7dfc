"""Checkpoint files complete or absent, and the choice of the checkpoint --resume continues from."""
import logging
import os
import os.path as osp
import types

import pytest
import torch

from mmflux.engine.runner.checkpoint_files import (CheckpointWriteError, checkpoint_problem,
                                                   remove_partials, write_bytes_atomic)
from mmflux.engine.runner.flux_runner import CheckpointResumeError, FluxRunner


def save(path, value=0.0, size=2000):
    torch.save(dict(state_dict=dict(w=torch.full((size, ), float(value)))), str(path))
    return str(path)


def cut(path, fraction):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * fraction)])
    return path


@pytest.mark.parametrize('fraction', [0.05, 0.3, 0.5, 0.9, 0.99])
def test_every_truncation_is_seen(tmp_path, fraction):
    path = cut(save(tmp_path / 'a.pth'), fraction)
    assert checkpoint_problem(path).startswith('truncated')


def test_complete_empty_foreign_and_damaged(tmp_path):
    good = save(tmp_path / 'good.pth')
    assert checkpoint_problem(good) is None and checkpoint_problem(good, thorough=True) is None
    legacy = str(tmp_path / 'legacy.pth')
    torch.save(dict(a=1), legacy, _use_new_zipfile_serialization=False)
    assert checkpoint_problem(legacy) is None
    (tmp_path / 'empty.pth').write_bytes(b'')
    assert checkpoint_problem(str(tmp_path / 'empty.pth')) == 'empty (0 bytes)'
    assert checkpoint_problem(str(tmp_path / 'nothing.pth')) == 'missing'
    (tmp_path / 'text.pth').write_text('hello world')
    assert checkpoint_problem(str(tmp_path / 'text.pth')).startswith('not a PyTorch checkpoint')
    # a flipped byte inside the tensor data: only the CRC check sees it
    data = bytearray(open(good, 'rb').read())
    data[len(data) // 2] ^= 0xFF
    damaged = tmp_path / 'damaged.pth'
    damaged.write_bytes(bytes(data))
    assert checkpoint_problem(str(damaged)) is None
    assert checkpoint_problem(str(damaged), thorough=True).startswith('damaged (member ')


def test_failed_atomic_write_leaves_the_old_file_and_no_partial(tmp_path, monkeypatch):
    target = tmp_path / 'metrics.json'
    write_bytes_atomic(str(target), b'old')

    def no_space(fd):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'fsync', no_space)
    with pytest.raises(CheckpointWriteError, match=r'could not write .*metrics\.json: No space '
                                                   r'left on device \(ENOSPC\)'):
        write_bytes_atomic(str(target), b'new')
    assert target.read_bytes() == b'old'
    assert sorted(os.listdir(tmp_path)) == ['metrics.json']


def test_remove_partials(tmp_path):
    (tmp_path / 'epoch_2.pth.partial').write_bytes(b'PK')
    save(tmp_path / 'epoch_1.pth')
    assert remove_partials(str(tmp_path)) == [str(tmp_path / 'epoch_2.pth.partial')]
    assert os.listdir(tmp_path) == ['epoch_1.pth']


# ------------------------------------------------------------------- resume choice
def choose(work_dir, load_from=None):
    """FluxRunner's choice, on a stand-in with only what it reads."""
    runner = types.SimpleNamespace(work_dir=str(work_dir), _load_from=load_from)
    runner._resume_dirs = lambda *paths: FluxRunner._resume_dirs(runner, *paths)
    return FluxRunner._choose_resume_checkpoint(runner)


def record(work_dir, text):
    (work_dir / 'last_checkpoint').write_text(text)


def test_resume_skips_a_truncated_newest_checkpoint(tmp_path, log_messages):
    save(tmp_path / 'epoch_1.pth')
    cut(save(tmp_path / 'epoch_2.pth'), 0.5)  # a full disk under mmengine's own writer
    record(tmp_path, str(tmp_path / 'epoch_2.pth'))
    assert choose(tmp_path) == str(tmp_path / 'epoch_1.pth')
    assert any('epoch_2.pth' in m and 'is truncated' in m and 'resuming from the newest complete '
               f'checkpoint {tmp_path / "epoch_1.pth"}' in m for m in log_messages)


def test_resume_when_last_checkpoint_names_a_deleted_file(tmp_path):
    save(tmp_path / 'epoch_2.pth')
    record(tmp_path, str(tmp_path / 'epoch_3.pth'))  # mmengine rotated, then was killed
    assert choose(tmp_path) == str(tmp_path / 'epoch_2.pth')


def test_resume_prefers_a_newer_complete_checkpoint(tmp_path, log_messages):
    save(tmp_path / 'epoch_1.pth')
    save(tmp_path / 'epoch_2.pth')  # killed before last_checkpoint was updated
    record(tmp_path, str(tmp_path / 'epoch_1.pth'))
    assert choose(tmp_path) == str(tmp_path / 'epoch_2.pth')
    # newest by epoch, not by time: a copied work dir has new modification times
    os.utime(tmp_path / 'epoch_2.pth', (1, 1))
    assert choose(tmp_path) == str(tmp_path / 'epoch_2.pth')


def test_resume_without_last_checkpoint_or_with_an_empty_one(tmp_path):
    save(tmp_path / 'epoch_1.pth')
    save(tmp_path / 'epoch_10.pth')
    assert choose(tmp_path) == str(tmp_path / 'epoch_10.pth')
    record(tmp_path, '')
    assert choose(tmp_path) == str(tmp_path / 'epoch_10.pth')


def test_named_checkpoint_falls_back_or_is_kept(tmp_path):
    save(tmp_path / 'epoch_1.pth')
    save(tmp_path / 'epoch_2.pth')
    named = cut(save(tmp_path / 'mine.pth'), 0.4)
    assert choose(tmp_path, named) == str(tmp_path / 'epoch_2.pth')
    # a complete named checkpoint is taken as asked, even if older
    assert choose(tmp_path, str(tmp_path / 'epoch_1.pth')) == str(tmp_path / 'epoch_1.pth')


def test_no_complete_checkpoint_is_refused_not_restarted(tmp_path):
    cut(save(tmp_path / 'epoch_1.pth'), 0.5)
    record(tmp_path, str(tmp_path / 'epoch_1.pth'))
    with pytest.raises(CheckpointResumeError, match=r'epoch_1\.pth .* is truncated .* no complete '
                                                    r'checkpoint .*Fix: name a complete'):
        choose(tmp_path)


def test_fresh_work_dir_starts_from_the_beginning(tmp_path, log_messages):
    assert choose(tmp_path) is None
    assert any('no checkpoint in' in m and 'training starts from the beginning' in m
               for m in log_messages)
