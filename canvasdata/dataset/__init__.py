"""The build pipeline: plan -> render -> paint -> encode -> write; resume; workers and ranks."""

from canvasdata.dataset.plan import Sample, ShardPlan, plan_samples, plan_shards
from canvasdata.dataset.runner import build, build_shard
from canvasdata.dataset.state import BuildError, shard_is_complete
from canvasdata.devices import Rank

__all__ = ["BuildError", "Rank", "Sample", "ShardPlan", "build", "build_shard", "plan_samples", "plan_shards",
           "shard_is_complete"]
