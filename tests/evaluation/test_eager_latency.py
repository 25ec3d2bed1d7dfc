"""mmflux.evaluation.latency: the eager one-view call and the machine facts; timing lives above."""
from mmflux.evaluation import latency


class CountingModel:
    """Stands in for a recognizer: counts the one-view calls and their budgets."""

    def __init__(self):
        self.calls = []

    def extract_feat(self, x, stage, budget):
        self.calls.append((tuple(x.shape), stage, budget))


def test_eager_call_runs_one_view_at_the_budget():
    model = CountingModel()
    call = latency.eager_pytorch(model, frames=2, side=28, budget=8)
    call()
    call()
    assert model.calls == [((1, 3, 2, 28, 28), 'head', 8)] * 2


def test_machine_info_names_the_runtime_and_threads():
    info = latency.machine_info('openvino')
    assert info['runtime'] == 'openvino' and info['torch_threads'] == info['threads'] >= 1
    assert info['cpu'] and 'ISA' in info['cpu_line']

