"""Keyed streams: a pure function of their keys, independent of the global state."""
import random

import numpy as np
import pytest
import torch

from mmflux.utils.keyed_random import (keyed_generator, keyed_global_rngs, keyed_seed,
                                       keyed_torch_generator)


def global_draws():
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()


def test_same_keys_same_stream_other_keys_other_stream():
    def draws(*keys):
        return keyed_generator(*keys).random(4).tolist()

    assert draws(0, 1, 2) == draws(0, 1, 2)
    assert draws(0, 1, 2) != draws(0, 2, 1)
    assert keyed_seed(5, 'sample') != keyed_seed(5, 'iteration')
    assert 0 <= keyed_seed(2**64 - 1, -1) < 2**63  # fits an int64 (tensors, torch seeds)
    a = torch.rand(3, generator=keyed_torch_generator(7, 'x'))
    assert torch.equal(a, torch.rand(3, generator=keyed_torch_generator(7, 'x')))


def test_bad_key_is_refused_by_name():
    with pytest.raises(TypeError, match='1.5'):
        keyed_seed(0, 1.5)
    with pytest.raises(ValueError, match='at least one key'):
        keyed_seed()


def test_global_rngs_in_the_block_depend_only_on_the_keys_and_are_restored():
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    with keyed_global_rngs(3, 4):
        first = global_draws()
    after_block = global_draws()
    random.seed(99), np.random.seed(99), torch.manual_seed(99)  # another caller state
    with keyed_global_rngs(3, 4):
        assert global_draws() == first
    with keyed_global_rngs(3, 5):
        assert global_draws() != first
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    assert global_draws() == after_block  # the block did not shift the caller's streams
