"""The ``cluster:`` section of a run profile: any dask cluster manager, by import path.

.. code-block:: yaml

    cluster:
      factory: dask_jobqueue.SLURMCluster
      options: {cores: 8, memory: 32GB, walltime: "02:00:00"}
      scale: {minimum: 1, maximum: 50}     # adaptive; or {workers: 10}

Validation checks the shape only (a dotted path, options as a mapping, a consistent scale): the
class is imported when the run starts (:mod:`geomask.executors.factory`), so a profile for SLURM
validates on a laptop without dask-jobqueue.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, WithJsonSchema, model_validator

from geomask.capacity import MAX_WORKERS
from geomask.spec import ClusterSpec, Distribute

__all__ = ["ClusterConfig", "ClusterScale", "Distribute", "check_cluster_profile", "cluster_options"]

_DOTTED = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ClusterScale(_Strict):
    """How many workers: ``workers`` (fixed: ``cluster.scale``) or ``minimum``/``maximum`` (adaptive)."""

    workers: Annotated[int, Field(ge=1, le=MAX_WORKERS)] | None = Field(
        None, description="a fixed number of workers (cluster.scale(workers))"
    )
    minimum: Annotated[int, Field(ge=0, le=MAX_WORKERS)] | None = Field(
        None, description="adaptive scaling: fewest workers (cluster.adapt(minimum=...))"
    )
    maximum: Annotated[int, Field(ge=1, le=MAX_WORKERS)] | None = Field(
        None, description="adaptive scaling: most workers (cluster.adapt(maximum=...))"
    )

    @model_validator(mode="after")
    def _one_way(self) -> ClusterScale:
        adaptive = self.minimum is not None or self.maximum is not None
        if self.workers is not None and adaptive:
            raise ValueError("give workers (fixed) or minimum/maximum (adaptive), not both")
        if self.workers is None and not adaptive:
            raise ValueError("give workers (fixed) or minimum/maximum (adaptive)")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"minimum ({self.minimum}) is above maximum ({self.maximum})")
        return self


class ClusterConfig(_Strict):
    """A dask cluster manager started for the run: its class by import path, its options, its scale."""

    factory: Annotated[str, Field(pattern=_DOTTED)] = Field(
        description="the cluster manager class by import path, e.g. dask_jobqueue.SLURMCluster, "
        "dask_kubernetes.operator.KubeCluster, distributed.LocalCluster (imported when the run starts)"
    )
    options: Annotated[dict[str, JsonValue], WithJsonSchema({"type": "object"})] = Field(
        default_factory=dict, description="keyword arguments of the class, as its documentation gives them"
    )
    scale: ClusterScale | None = Field(
        None,
        description="{workers: N} (fixed) or {minimum: A, maximum: B} (adaptive); none: as the class starts",
    )

    def to_spec(self) -> ClusterSpec:
        """The engine's :class:`~geomask.spec.ClusterSpec`."""
        scale = self.scale or ClusterScale.model_construct()
        return ClusterSpec(
            self.factory,
            dict(self.options),
            workers=scale.workers,
            minimum=scale.minimum,
            maximum=scale.maximum,
        )


def cluster_options(cluster: ClusterConfig | None) -> dict[str, Any]:
    """The RunOptions values of a profile's ``cluster:`` section (none: an empty dict)."""
    if cluster is None:
        return {}
    return {"scheduler": "cluster", "cluster": cluster.to_spec()}


def check_cluster_profile(profile: Any) -> Any:
    """A profile with ``cluster:`` leaves ``scheduler:`` at its default (the cluster is the scheduler)."""
    if profile.cluster is not None and profile.scheduler != "threads":
        raise ValueError(
            f"cluster: starts its own scheduler; remove scheduler: {profile.scheduler} "
            "(or remove cluster: to use that scheduler)"
        )
    return profile
