"""Cluster start-up: the Dask client a run asks for, or none (the local engine).

The CLI's ``--scheduler``/``--workers``/``--gpus`` and a workflow's ``engine``
section both come here, so the library never depends on the CLI. Dask is
imported only when a cluster is asked for.

>>> with dask_client(None, None) as client:
...     print(client)
None
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from geoseg.errors import InputError


@contextlib.contextmanager
def dask_client(
    scheduler: str | None, workers: int | None, gpus: list[int] | None = None
) -> Iterator[Any]:
    """A Dask client for ``--scheduler``/``--workers``/``--gpus``, or ``None`` (local engine).

    Parameters
    ----------
    scheduler
        Address of a running Dask scheduler to connect to.
    workers
        Start a local cluster of this many CPU workers.
    gpus
        Start a local cluster with one worker per GPU index.

    Yields
    ------
    distributed.Client or None
        ``None`` when none of the three is given: the run stays in this process.

    Raises
    ------
    InputError
        More than one of the three, fewer than one worker, or an unreachable scheduler.

    Examples
    --------
    >>> with dask_client(None, 0):  # doctest: +ELLIPSIS
    ...     pass
    Traceback (most recent call last):
    geoseg.errors.InputError: workers=... must be at least 1, got 0; omit workers=... ...
    """
    if sum(bool(x) for x in (scheduler, workers, gpus)) > 1:
        raise InputError(
            "pass one of --scheduler (an existing cluster), --workers (a new CPU cluster) "
            "or --gpus (a new cluster, one worker per GPU)"
        )
    if workers is not None and workers < 1:
        raise InputError(
            f"--workers must be at least 1, got {workers}; omit --workers to run in this process"
        )
    if not scheduler and not workers and not gpus:
        yield None
        return
    from geoseg.engine.dask import require_distributed

    distributed = require_distributed()
    if gpus:
        from geoseg.engine.dask import gpu_cluster

        # results come straight from the workers, as with --workers (see local_cluster)
        with (
            gpu_cluster(gpus) as cluster,
            distributed.Client(cluster, direct_to_workers=True) as client,
        ):
            yield client
        return
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout=10)
        except OSError as err:
            raise InputError(
                f"cannot reach the Dask scheduler at {scheduler} ({err}); is it running?"
            ) from err
        with client:
            yield client
        return
    from geoseg.engine.dask import local_cluster

    with local_cluster(workers) as client:
        yield client
