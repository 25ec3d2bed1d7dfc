"""Pareto front of a plan: nothing on it is beaten on both cost and accuracy."""
from mmflux.evaluation.to_plan import pareto_front


def test_pareto_front_drops_dominated_settings():
    points = [dict(name=n, latency_ms=c, val_top1=a) for n, c, a in
              [('a', 1, .5), ('b', 2, .4), ('c', 3, .7), ('d', 3, .6), ('e', 5, .7), ('f', 6, .9)]]
    assert [p['name'] for p in pareto_front(points)] == ['a', 'c', 'f']
    assert [p['name'] for p in pareto_front(points, cost='missing')] == []
