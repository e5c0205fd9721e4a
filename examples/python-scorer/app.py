"""A scheduler scorer for orch, written in Python.

Kubernetes' "balanced allocation": prefer the node whose cpu and memory
would be used in the most equal proportion after placing, so neither runs
out while the other sits idle. Build it with build.sh, check it with
`orch plugin test examples/python-scorer/scorer.wasm`.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.scorer import ScoreRequest, ScoreResponse, ScorerInfo


def used_fraction(capacity: int, used: int) -> float:
    """Fraction of a resource in use after placing, in [0, 1]; a resource
    the node does not offer counts as full."""
    if capacity <= 0:
        return 1.0
    return min(max(used / capacity, 0.0), 1.0)


class Scorer(exports.Scorer):
    def info(self) -> ScorerInfo:
        return ScorerInfo(
            name="balanced-python",
            version="0.1.0",
            description="prefers nodes whose cpu and memory stay in balance (Kubernetes' BalancedAllocation), in Python",
        )

    def score(self, request: ScoreRequest) -> ScoreResponse:
        if request.job_priority > 200:
            # An example of refusing a request: the host's failure policy
            # takes over and the reason reaches the operator.
            raise Err(f"job priority {request.job_priority} is outside 0-200")
        ask = request.ask
        nodes = request.nodes  # columns: entry i of each list is node i
        scores = []
        for cpu_cap, cpu_used, mem_cap, mem_used in zip(
            nodes.cpu_capacity, nodes.cpu_allocated, nodes.memory_capacity, nodes.memory_allocated
        ):
            cpu = used_fraction(cpu_cap, cpu_used + ask.cpu_mhz)
            memory = used_fraction(mem_cap, mem_used + ask.memory_mib)
            scores.append(1.0 - abs(cpu - memory))
        # One part, "balance", which is the whole score.
        return ScoreResponse(part_names=["balance"], scores=scores, parts=list(scores))
