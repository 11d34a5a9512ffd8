"""A flow run that ``wxens serve`` started and then stopped (SIGTERM: Prefect's engine raises
its ``TerminationSignal``, not the CLI's ``KeyboardInterrupt``) while its task's local dask
cluster started: the half-started cluster was left to ``distributed``'s clean-up at exit,
which logged some 15 INFO lines of its workers' and scheduler's close in the served log,
after Prefect's "Execution of flow run ... was terminated" line. A real cluster, a real
signal."""

from __future__ import annotations

import logging
import signal

import pytest
from prefect.exceptions import TerminationSignal

from flows.cluster import LocalClusterConfig, dask_client


@pytest.fixture
def prefect_sigalrm():
    """SIGALRM raises Prefect's ``TerminationSignal``, as its engine's SIGTERM handler does;
    the handler and the ``distributed`` logger's level are put back after."""
    logger = logging.getLogger("distributed")
    level = logger.level

    def terminate(signum, frame):
        raise TerminationSignal(signal=signal.SIGTERM)

    before = signal.signal(signal.SIGALRM, terminate)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, before)
    logger.setLevel(level)


def test_prefect_s_termination_while_the_cluster_starts_closes_it_quietly(prefect_sigalrm):
    from distributed.deploy.spec import SpecCluster

    before = set(SpecCluster._instances)
    config = LocalClusterConfig(n_workers=1, processes=True)
    signal.setitimer(signal.ITIMER_REAL, 0.3)  # the workers take seconds to start
    with pytest.raises(TerminationSignal), dask_client(config=config):
        pytest.fail("the cluster started before the signal came")
    left = set(SpecCluster._instances) - before  # a closed one is gone, or is left closed
    assert all(cluster.status.name == "closed" for cluster in left), [
        cluster.status for cluster in left
    ]
    assert logging.getLogger("distributed").level >= logging.ERROR  # its exit stays quiet
