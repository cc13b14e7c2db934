"""The run-profile model: scheduler, parallelism, window size, GDAL and output creation options.

A profile (``configs/*.yaml``) says how to run a pipeline; :func:`geomask.config.load_profile` reads
one. :func:`parse_scheduler` checks a scheduler name or address (also for ``--scheduler``).
:func:`geomask.config.build.build_run_options` turns a profile into the engine's run options.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, get_args

from pydantic import Field, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from geomask.capacity import MAX_WORKERS
from geomask.config._report import show
from geomask.config.cluster import ClusterConfig, Distribute, check_cluster_profile
from geomask.config.fields import GdalValue, _Strict
from geomask.messages import did_you_mean
from geomask.spec import LocalScheduler

__all__ = ["LocalScheduler", "MemoryLimit", "Profile", "Scheduler", "parse_scheduler"]

_ADDRESS = r"^(tcp|tls)://[^\s/:]+:[0-9]{1,5}$"
_BYTES = r"^(auto|[0-9]+(\.[0-9]+)?\s*([kKMGT]i?B|B)?)$"


def parse_scheduler(value: Any) -> str:
    """Check a scheduler name or address; returns it unchanged.

    Raises
    ------
    ValueError
        With the choices and a did-you-mean (also a pydantic error inside the models).
    """
    if isinstance(value, str) and (value in get_args(LocalScheduler) or re.fullmatch(_ADDRESS, value)):
        return value
    raise PydanticCustomError(
        "option_scheduler",
        "expected threads, processes, synchronous or a scheduler address: local-cluster (started for the "
        "run) or tcp://HOST:PORT, got {got}{hint}",
        {
            "got": show(value),
            "hint": "." + hint if (hint := did_you_mean(value, get_args(LocalScheduler))) else "",
        },
    )


Scheduler = Annotated[
    str,
    PlainValidator(parse_scheduler),
    WithJsonSchema(
        {
            "anyOf": [
                {"enum": list(get_args(LocalScheduler))},
                {"type": "string", "pattern": _ADDRESS, "description": "a dask.distributed scheduler"},
            ]
        }
    ),
]
"""threads, processes, synchronous, local-cluster, or a dask.distributed address tcp://HOST:PORT."""


def _memory_limit(value: Any) -> str:
    if isinstance(value, str) and re.fullmatch(_BYTES, value.strip()):
        return value.strip()
    raise PydanticCustomError(
        "option_memory_limit",
        "expected bytes per worker with a unit, e.g. '2 GiB' or '512 MB', or 'auto', got {got}",
        {"got": show(value)},
    )


MemoryLimit = Annotated[
    str, PlainValidator(_memory_limit), WithJsonSchema({"type": "string", "pattern": _BYTES})
]
"""Bytes per worker as text with a unit (``2 GiB``, ``512 MB``), a plain number of bytes, or ``auto``."""


class Profile(_Strict):
    """How to run: scheduler, parallelism, window size, GDAL and output creation options.

    ``scheduler`` is one of dask's local schedulers (``threads``, ``processes``, ``synchronous``),
    ``local-cluster`` (a ``distributed.LocalCluster`` of ``workers`` worker processes with
    ``threads_per_worker`` threads and ``memory_limit`` each, started for the run) or the address of
    a running dask.distributed scheduler (``tcp://HOST:PORT``), whose workers are sized by whoever
    started them.
    """

    scheduler: Scheduler = Field(
        "threads",
        description="dask scheduler: threads (default), processes, synchronous (debugging), local-cluster "
        "(dask.distributed worker processes on this machine), or the address of a running "
        "dask.distributed scheduler, tcp://HOST:PORT",
    )
    workers: Annotated[int, Field(ge=1, le=MAX_WORKERS)] | None = Field(
        None,
        description="parallel workers (default: all cores); for local-cluster, worker processes; "
        "capped at run time to what the machine holds (threads: 4 per core; processes: one per core "
        "and 256 MiB each)",
    )
    threads_per_worker: Annotated[int, Field(ge=1, le=MAX_WORKERS)] | None = Field(
        None,
        description="threads in each local-cluster worker process (default: 1; 4 per core in all at most)",
    )
    memory_limit: MemoryLimit | None = Field(
        None,
        description="memory per local-cluster worker, e.g. '2 GiB' or 'auto' (default: auto, the "
        "machine's memory shared by the workers); a worker above 95 % of it is restarted",
    )
    window_size: Annotated[int, Field(ge=16, le=65536)] = Field(
        1024, description="window side in pixels, rounded up to a multiple of the input's block size"
    )
    copy_tiles: bool = Field(
        True,
        description="copy output tiles that equal the input's as compressed bytes from the input, "
        "where both files' tiles decode alike (same codec, predictor, tile size, interleave); the "
        "pixels are the same either way, false re-encodes every tile",
    )
    gdal: dict[Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")], GdalValue] = Field(
        default_factory=dict, description="GDAL configuration options, e.g. GDAL_CACHEMAX: 512"
    )
    creation_options: dict[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")], GdalValue] = Field(
        default_factory=dict, description="extra GeoTIFF/COG creation options, e.g. BLOCKSIZE: 512"
    )
    cluster: ClusterConfig | None = Field(None, description="a dask cluster manager started for the run")
    distribute: Distribute = Field(
        "auto", description="on a cluster: auto, scenes or windows (docs/cluster.md)"
    )
    _cluster_alone = model_validator(mode="after")(check_cluster_profile)
