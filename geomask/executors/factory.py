"""Any dask deployment by name: a cluster manager class imported by dotted path, started for the run.

A run profile's ``cluster:`` section (:mod:`geomask.config.cluster`) names a dask cluster manager
(``dask_jobqueue.SLURMCluster``, ``dask_kubernetes.operator.KubeCluster``, ``dask_gateway.GatewayCluster``,
``coiled.Cluster``, ``distributed.LocalCluster`` ...) with its keyword arguments and scaling.
:func:`start_cluster` imports the class, instantiates it, scales it (fixed: ``cluster.scale(n)``;
adaptive: ``cluster.adapt(minimum=, maximum=)``), connects a client, waits for the first worker
and closes both at the end. geomask has no code for any particular deployment: whatever the class
accepts, the profile can pass.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

from distributed import Client

from geomask.errors import ConfigError, RunError
from geomask.spec import ClusterSpec

__all__ = ["FIRST_WORKER_WAIT", "load_factory", "start_cluster"]

FIRST_WORKER_WAIT = 60.0
"""Seconds the run waits for the first worker of a cluster it started before it goes on without."""


def load_factory(path: str) -> Any:
    """The class (or callable) at the dotted import path ``path``, e.g. ``distributed.LocalCluster``.

    Raises
    ------
    ConfigError
        The module does not import (not installed) or has no such attribute.
    """
    module_name, _, name = path.rpartition(".")
    if not module_name:
        raise ConfigError(
            f"cluster.factory {path!r}: expected a dotted import path, e.g. dask_jobqueue.SLURMCluster"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        package = module_name.split(".")[0]
        raise ConfigError(
            f"cluster.factory {path}: cannot import {module_name} ({e}); install it where geomask runs "
            f"(e.g. pip install {package.replace('_', '-')})"
        ) from e
    try:
        return getattr(module, name)
    except AttributeError as e:
        raise ConfigError(f"cluster.factory {path}: {module_name} has no {name}") from e


@contextlib.contextmanager
def start_cluster(spec: ClusterSpec) -> Iterator[Client]:
    """Start the cluster ``spec`` names, scale it and yield a client; both closed on exit.

    Parameters
    ----------
    spec : ClusterSpec
        ``factory`` (dotted path), ``options`` (its keyword arguments), and ``workers`` (fixed) or
        ``minimum``/``maximum`` (adaptive).

    Raises
    ------
    ConfigError
        The class does not import, or refuses its options (TypeError or ValueError from it).
    RunError
        The cluster does not start or scale (its own error, e.g. no ``sbatch`` on this machine).

    Notes
    -----
    With a scale, the client waits up to :data:`FIRST_WORKER_WAIT` seconds for the first worker,
    then goes on (a batch queue may hold the jobs longer: the tasks wait for workers). The run's path
    check (:mod:`geomask.executors.reach`) runs on the workers that have joined by then.
    """
    factory = load_factory(spec.factory)
    try:
        cluster = factory(**dict(spec.options))
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"cluster.factory {spec.factory} refused its options {sorted(spec.options)} "
            f"({type(e).__name__}: {e}); fix cluster.options in the profile"
        ) from e
    except Exception as e:  # a third-party class: any failure to start is reported
        raise RunError(f"cannot start the {spec.factory} cluster ({type(e).__name__}: {e})") from e
    try:
        try:
            if spec.workers is not None:
                cluster.scale(spec.workers)
            elif spec.minimum is not None or spec.maximum is not None:
                cluster.adapt(minimum=spec.minimum or 0, maximum=spec.maximum or spec.minimum or 1)
            client = Client(cluster, set_as_default=False)
        except (TypeError, ValueError) as e:
            raise ConfigError(
                f"cluster.factory {spec.factory}: cannot scale it ({type(e).__name__}: {e})"
            ) from e
        except Exception as e:
            raise RunError(f"cannot start the {spec.factory} cluster ({type(e).__name__}: {e})") from e
        try:
            if spec.workers or spec.minimum:
                # the path check runs on the workers that have joined; a batch queue may hold them
                with contextlib.suppress(TimeoutError, OSError):
                    client.wait_for_workers(1, timeout=FIRST_WORKER_WAIT)
            yield client
        finally:
            client.close()
    finally:
        with contextlib.suppress(Exception):
            cluster.close()
