"""Pose-graph optimisation speed: the Intel g2o graph and a synthetic 5,000-pose lawn-mower graph.

Each round restarts from the initial guess (odometry / dead reckoning), so a round is a full solve.
Target (research note 2.5): a few thousand poses in well under a second.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from navigation.slam.posegraph import PoseGraph, load_g2o

POSEGRAPHS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "slam" / "posegraphs"


def lawnmower_graph(rows: int, steps: int, seed: int = 0) -> PoseGraph:
    """Boustrophedon: 0.2 m steps, 0.3 m rows, noisy odometry, ~0.4 closures/pose within 1 m."""
    rng = np.random.default_rng(seed)
    moves = []
    for r in range(rows):
        turn = math.pi / 2 if r % 2 == 0 else -math.pi / 2
        moves += [(0.2, 0.0, 0.0)] * steps + [(0.0, 0.0, turn), (0.3, 0.0, turn)]
    moves = np.array(moves)
    theta = np.concatenate(([0.0], np.cumsum(moves[:, 2])))
    step_xy = moves[:, 0] * np.exp(1j * theta[:-1])  # every move is along the heading
    xy = np.concatenate(([0.0], np.cumsum(step_xy)))
    truth = np.column_stack((xy.real, xy.imag, theta))
    graph = PoseGraph()
    pose = truth[0].copy()
    graph.add_node(pose)
    for k, move in enumerate(moves):
        z = move + rng.normal(0.0, 1.0, 3) * (0.01, 0.01, 0.005)
        c, s = math.cos(pose[2]), math.sin(pose[2])
        pose = pose + (c * z[0] - s * z[1], s * z[0] + c * z[1], z[2])
        graph.add_node(pose)
        graph.add_edge(k, k + 1, z, (1e4, 4e4))
    pairs = np.array(sorted(cKDTree(truth[:, :2]).query_pairs(1.0)))
    pairs = pairs[pairs[:, 1] - pairs[:, 0] > 10]
    pairs = pairs[rng.random(len(pairs)) < 0.4 * len(truth) / len(pairs)]
    for i, j in pairs:
        c, s = math.cos(truth[i, 2]), math.sin(truth[i, 2])
        d = truth[j] - truth[i]
        z = np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1], d[2]])
        z += rng.normal(0.0, 1.0, 3) * (0.02, 0.02, 0.01)
        graph.add_edge(int(i), int(j), z, (2500.0, 1e4), robust=True, kind="loop")
    return graph


def optimise_from_start(benchmark, graph: PoseGraph, max_iterations: int):
    """Benchmark full solves from the graph's current (initial) estimate; return the last result."""
    start = graph.poses
    results = []

    def reset():
        graph.set_poses(start)
        return (), {}

    def run():
        results.append(graph.optimize(max_iterations=max_iterations))

    benchmark.pedantic(run, setup=reset, rounds=5, iterations=1, warmup_rounds=1)
    result = results[-1]
    benchmark.extra_info.update(
        iterations=result.iterations,
        initial_chi2=result.initial_cost,
        final_chi2=result.final_cost,
        converged=result.converged,
    )
    return result


@pytest.mark.shared_data
def test_optimize_intel_1228poses_1483edges(benchmark):
    path = POSEGRAPHS / "input_INTEL_g2o.g2o"
    if not path.is_file():
        pytest.skip(f"real data not found at {path} (the ../shared folder beside the repo)")
    result = optimise_from_start(benchmark, load_g2o(path), 20)
    assert result.converged and result.final_cost < 1e-3 * result.initial_cost


def test_optimize_lawnmower_5001poses(benchmark):
    graph = lawnmower_graph(25, 198)
    assert graph.num_nodes == 5001
    result = optimise_from_start(benchmark, graph, 20)
    assert result.converged and result.final_cost < 0.1 * result.initial_cost


def test_reoptimize_converged_lawnmower_5001poses(benchmark):
    """The incremental SLAM case: one more call on a graph that is already at its optimum."""
    graph = lawnmower_graph(25, 198)
    graph.optimize()
    result = benchmark.pedantic(graph.optimize, rounds=5, iterations=1, warmup_rounds=1)
    assert result.converged and result.iterations <= 2
