"""An ad hoc run on Prefect's temporary server sends no flow-run heartbeats: each flow's end
waited for its heartbeat thread's 1 s sleep (a parent and six subflows: 9.2 s with them,
2.0 s without), for a server gone with the command. A run on a server of the user's keeps
them: they are how it tells a crashed run."""

from __future__ import annotations

from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    temporary_settings,
)

from flows.settings import ad_hoc_heartbeats_off


def test_flows_on_the_temporary_server_send_no_heartbeats():
    with temporary_settings(restore_defaults={PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY}):
        assert PREFECT_API_URL.value() is None and PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value()
        with ad_hoc_heartbeats_off():
            assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is None
        assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() == 180  # Prefect's, after the block


def test_flows_on_a_server_of_the_user_s_keep_their_heartbeats():
    served = {PREFECT_API_URL: "http://127.0.0.1:4200/api", PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 60}
    with temporary_settings(served), ad_hoc_heartbeats_off():
        assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() == 60
