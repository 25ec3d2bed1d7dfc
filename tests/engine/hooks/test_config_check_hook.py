"""FluxConfigCheckHook: a config fault stops a plain mmengine Runner before it trains or tests.

(mmflux's tools check right after merging the config: tests/tools/test_train_test_tools.py;
the check itself: tests/engine/test_config_check.py.)
"""
import pytest
from mmengine.runner import Runner


@pytest.fixture
def cfg(random_training_cfg):
    """The RANDOM_TRAINING config (conftest.py), loaded, for the test to break."""
    return random_training_cfg


def test_hook_stops_a_plain_runner_before_the_first_iteration(cfg):
    """Without mmflux's tools (e.g. MMAction2's tools/train.py) the config hook
    catches it in before_run, before any iteration."""
    cfg.model.train_cfg.budgets = (1000, 64, 32)
    cfg.model.cls_head.head_budgets = (1000, 64, 32)
    assert any(h['type'] == 'FluxConfigCheckHook' for h in cfg.custom_hooks)
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match='1000 is above the 200 tokens'):
        runner.train()
    assert runner.iter == 0


def test_sampler_error_surfaces_at_train_start(cfg):
    """mmengine builds the train dataloader (and FluxBatchSampler) lazily, at the
    start of runner.train(); the error comes before any iteration."""
    cfg.train_dataloader.batch_sampler.frames = (8, 8)
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match=r'batch_sampler.frames=\(8, 8\) is an empty range'):
        runner.train()
    assert isinstance(runner._train_loop, dict)  # the loop never came into being


def test_hook_stops_a_plain_test_run_before_loading_weights(cfg, tmp_path):
    cfg.model.test_cfg.token_budget = 100000
    cfg.load_from = str(tmp_path / 'does_not_exist.pth')  # never reached
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match='model.test_cfg.token_budget=100000'):
        runner.test()
