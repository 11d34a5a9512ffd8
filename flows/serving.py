"""Scheduled runs served: the deployments of a schedule file (:mod:`flows.deployments`)
registered on a Prefect server and their flow runs executed here, and the start-up of each
flow's process (the subprocess of a served run, a worker's, a notebook's)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from flows.settings import offline_temporary_server
from pipeline.errors import InputError
from pipeline.extensions import load_extensions

if TYPE_CHECKING:
    from flows.deployments import DeploymentSpec

log = logging.getLogger(__name__)


def to_deployments(specs: tuple[DeploymentSpec, ...]) -> list[Any]:
    """Prefect ``RunnerDeployment`` objects for ``specs``: cron-scheduled, importing the
    flow by module path (``flows.steps.<flow>``, ``flows.pipelines.ensemble_run``) so a run
    works from any directory."""
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType

    from flows.pipelines import FLOWS

    return [
        FLOWS[spec.flow].to_deployment(
            name=spec.name,
            schedule=Cron(spec.cron, timezone=spec.timezone),
            parameters=spec.parameters,
            description=spec.description or None,
            tags=["wxens", spec.flow],
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        for spec in specs
    ]


def require_server() -> str:
    """The API URL of the Prefect server to serve on; InputError when none is set or it
    does not answer (a served deployment on a throwaway temporary server would vanish
    with this process)."""
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value()
    how = (
        "start one with `prefect server start` (in another terminal) and point wxens at it "
        "with `prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api`"
    )
    if not api_url:
        raise InputError(f"no Prefect server configured (PREFECT_API_URL is unset); {how}")
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=10):
            pass
    except OSError as err:
        # the one configured: pointing wxens at the default address found no server either
        address = urllib.parse.urlsplit(api_url)
        port = f" --port {address.port}" if address.port else ""
        raise InputError(
            f"the Prefect server at {api_url} does not answer ({err}); start it with "
            f"`prefect server start{port}` on {address.hostname} (in another terminal), or "
            "point wxens at one that runs with `prefect config set PREFECT_API_URL=URL`"
        ) from err
    return api_url


def serve(specs: tuple[DeploymentSpec, ...], *, limit: int | None = None) -> None:
    """Register ``specs`` on the configured Prefect server and execute their runs here
    until interrupted: Ctrl-C or SIGTERM cancels the runs in progress and pauses the
    schedules, then raises ``KeyboardInterrupt`` or :class:`~pipeline.signals.Terminated`,
    so that the CLI exits 130 or 143 as every command stopped by a signal does (Prefect's
    ``serve`` returned, and ``wxens serve`` exited 0 as if it had ended by itself)."""
    import asyncio

    from prefect.flows import _display_serve_start_message as display_serve_start_message
    from prefect.runner import Runner

    from pipeline.signals import Terminated

    class SignalledRunner(Runner):
        """Prefect's runner, which installs its own SIGTERM handler (a graceful stop),
        noting that the signal came. Where Prefect's handler calls ``sys.exit(0)``, before
        the runner has started and during its stop, a SIGTERM raises :class:`Terminated`
        (exit 143 and its line, not 0) or, a second one, lets the stop finish (cut short,
        it left the runs in progress recorded Running)."""

        terminated = False

        def handle_sigterm(self, *args: Any, **kwargs: Any) -> None:
            self.terminated = True
            if self.stopping:
                log.info("SIGTERM received again; still stopping (cancelling the runs)")
                return
            if not self.started or self._loop is None:
                raise Terminated
            super().handle_sigterm(*args, **kwargs)

        interrupted = False

        def handle_sigint(self, *args: Any) -> None:
            """Ctrl-C: the graceful stop of SIGTERM (Prefect only lets ``KeyboardInterrupt``
            tear the runner down, which left the runs in progress recorded Running)."""
            self.interrupted = True
            if self.stopping:
                return
            if not self.started or self._loop is None:
                raise KeyboardInterrupt
            self.stopping = True
            self.execute_in_background(self.astop)

        async def start(self, *args: Any, **kwargs: Any) -> None:
            main = threading.current_thread() is threading.main_thread()
            before = signal.signal(signal.SIGINT, self.handle_sigint) if main else None
            try:
                await super().start(*args, **kwargs)
            finally:
                if before is not None:
                    signal.signal(signal.SIGINT, before)

    api_url = require_server()
    deployments = to_deployments(specs)
    for spec in specs:
        log.info(
            "serving %s/%s on cron %r (%s) at %s",
            spec.flow,
            spec.name,
            spec.cron,
            spec.timezone,
            api_url,
        )
    runner = SignalledRunner(limit=limit)  # pauses the schedules when it stops
    for deployment in deployments:
        runner.add_deployment(deployment)
    display_serve_start_message(*deployments)  # Prefect's serve prints it (how to trigger)
    asyncio.run(runner.start())  # returns once a signal has stopped it
    if runner.terminated:
        raise Terminated
    if runner.interrupted:
        raise KeyboardInterrupt


def prepare_flow_process() -> None:
    """On import of :mod:`flows.steps`, and so of :mod:`flows.pipelines` (each flow run of
    ``wxens serve`` or of a Prefect worker is a subprocess that imports its flow's module; a
    notebook too): load the extensions installed as packages (:mod:`pipeline.extensions`),
    so that a failed one is logged before the flow runs, :func:`quiet_flow_runs`, and
    :func:`flows.settings.offline_temporary_server` for a script or notebook that calls the
    flows without a server (as ``wxens run`` does)."""
    load_extensions()
    quiet_flow_runs()
    offline_temporary_server()


def quiet_flow_runs() -> None:
    """Drop the traceback from Prefect's records of a :class:`~pipeline.errors.WxensError`,
    as the CLI does in its own process, in a script or notebook that calls the flows and in
    the subprocess of each flow run of ``wxens serve``: a run failed by bad input logs its
    message, not pages of Prefect's traceback before the caller gets the error. Nothing
    where :data:`flows.cli.RUN_TRACEBACKS_ENV` is 1 (``wxens -v``)."""
    from flows.cli import RUN_LOGGERS, RUN_TRACEBACKS_ENV, without_wxens_traceback

    if os.environ.get(RUN_TRACEBACKS_ENV) == "1":
        return

    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if without_wxens_traceback not in logger.filters:
            logger.addFilter(without_wxens_traceback)
