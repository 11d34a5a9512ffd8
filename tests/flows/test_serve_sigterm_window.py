"""``wxens serve``'s SIGTERM outside the runner's graceful stop: before the runner has
started, and a second one while it stops. Prefect's handler calls ``sys.exit(0)`` there, so
``wxens serve`` exited 0 without its line, and a second SIGTERM cut the stop short, leaving
the run in progress recorded Running (no server needed: the runner's start is replaced)."""

from __future__ import annotations

import pytest

from flows import serving
from pipeline.signals import Terminated


@pytest.fixture
def runner_start(monkeypatch):
    """Replace the runner's start by ``body(runner)``, the server by nothing."""
    import asyncio

    from prefect.runner import Runner

    monkeypatch.setattr(serving, "require_server", lambda: "http://127.0.0.1:9/api")
    monkeypatch.setattr(serving, "to_deployments", lambda specs: [])
    monkeypatch.setattr("prefect.flows._display_serve_start_message", lambda *d: None)

    def use(body):
        async def start(self, *args, **kwargs):
            body(self)
            await asyncio.sleep(0.1)  # what the body scheduled on the loop runs

        monkeypatch.setattr(Runner, "start", start)

    return use


def test_sigterm_before_the_runner_has_started_exits_as_terminated(runner_start):
    runner_start(lambda runner: runner.handle_sigterm())  # not started yet
    with pytest.raises(Terminated):
        serving.serve(())


def test_a_second_sigterm_while_stopping_lets_the_stop_finish(runner_start):
    def stopping(runner):
        runner.started, runner.stopping = False, True  # the first SIGTERM's astop
        runner.terminated = True
        runner.handle_sigterm()  # the second: ignored, the stop goes on

    runner_start(stopping)
    with pytest.raises(Terminated):  # at the end, as after one SIGTERM
        serving.serve(())


def test_ctrl_c_stops_the_runner_as_sigterm_does_cancelling_the_runs(runner_start):
    """Ctrl-C went through Prefect's ``KeyboardInterrupt`` teardown, which cancels no run:
    the run in progress stayed Running on the server. Now it is the graceful stop
    (``astop``: cancel the runs), then ``KeyboardInterrupt`` (exit 130)."""
    import asyncio
    import signal

    stopped = []

    async def astop():
        stopped.append(True)

    def interrupt(runner):
        runner.started, runner._loop, runner.astop = True, asyncio.get_running_loop(), astop
        signal.raise_signal(signal.SIGINT)

    runner_start(interrupt)
    with pytest.raises(KeyboardInterrupt) as raised:
        serving.serve(())
    assert not isinstance(raised.value, Terminated)
    assert stopped == [True]
