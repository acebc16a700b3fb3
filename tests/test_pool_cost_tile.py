"""The dashboard's per-pool tiles: nodes running Dask pods per pool, and their hourly cost at the
plan's prices (issue 23). One owner of prices (components/prices.py): the tile's per-node figures
must be the plan's `PoolCost.hourly` for every pool the plan prices, and nothing else."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from components import dashboard_spec
from gpudask.plan import report as planning
from gpudask.record.recorder import Recording
from tests.conftest import GKE_STACKS, settings_for

Run = Callable[..., Recording]


def _tile_queries(rec: Recording) -> dict[str, str]:
    board = json.loads(rec.one("gcp:monitoring/dashboard:Dashboard").inputs["dashboardJson"])
    return {
        t["widget"]["title"]: t["widget"]["xyChart"]["dataSets"][0]["timeSeriesQuery"]["prometheusQuery"]
        for t in board["mosaicLayout"]["tiles"]
    }


def _cost_terms(promql: str) -> dict[str, tuple[str, float]]:
    """pool -> (its node-name matcher, the $/h each node is multiplied by), read back from the PromQL."""
    terms = re.findall(
        r'label_replace\(count\(count by \(node\) \(up\{[^}]*node=~"([^"]+)"[^}]*\} == 1\)\) \* ([0-9.]+), "pool", "([^"]+)", "", ""\)',
        promql,
    )
    return {pool: (matcher, float(price)) for matcher, price, pool in terms}


@pytest.mark.parametrize("stack", GKE_STACKS)
def test_the_cost_tile_prices_each_pools_nodes_as_the_plan_does(recorded: Run, stack: str) -> None:
    rec = recorded(stack)
    queries = _tile_queries(rec)
    (cost,) = [q for title, q in queries.items() if title.startswith("Their cost per hour, per pool")]
    (nodes,) = [q for title, q in queries.items() if title == "Nodes running Dask pods, per pool"]
    plan = planning.build_plan(rec)
    tile = _cost_terms(cost)
    assert set(tile) == {c.pool for c in plan.costs}, (tile, [c.pool for c in plan.costs])
    cluster = settings_for(stack).cluster_name
    for c in plan.costs:
        matcher, per_node = tile[c.pool]
        assert per_node == pytest.approx(c.hourly, abs=1e-4), c.pool
        assert matcher == f"gke-{cluster}-{c.pool}-.+"
        # The count tile counts exactly what the cost tile multiplies.
        assert f'node=~"{matcher}"' in nodes


def test_a_pool_whose_name_extends_another_is_not_counted_twice() -> None:
    s = settings_for("dev")
    (nodes, _) = dashboard_spec.pool_queries(s.dask, "c", {"a100": 1.0, "a100-80": 2.0})
    a100 = nodes.promql.split(" or ")[0]
    assert 'node=~"gke-c-a100-.+",node!~"gke-c-a100-80-.+"' in a100 and '"pool", "a100"' in a100
