"""Job outcomes go through ``status.record``: a batch is one transaction and one round of events, only changes
are written and announced, and a row being deleted stays ``deleting`` (an error there keeps only its reason)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants import status
from tenants.choices import ObjectStatus
from tenants.models import Network
from tenants.status import Outcome

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rounds(monkeypatch):
    """Each round of events sent after a commit, as ``(network id, status)`` pairs, recorded instead of sent."""
    sent: list[list[tuple[int, str]]] = []
    monkeypatch.setattr("tenants.events.send_many",
                        lambda items: sent.append([(data["id"], data["status"]) for _, _, data in items]))
    return sent


def _statements(queries) -> list[str]:
    """The SELECTs and UPDATEs run (transaction control differs between SQLite and PostgreSQL)."""
    return [q["sql"].split()[0] for q in queries.captured_queries if q["sql"].split()[0] in ("SELECT", "UPDATE")]


def _networks(network_factory, n: int) -> list[Network]:
    made = [network_factory() for _ in range(n)]
    return list(Network.objects.filter(pk__in=[m.pk for m in made]).select_related("tenant").order_by("pk"))


def test_a_batch_is_one_read_one_update_per_outcome_and_one_round_of_events(network_factory, agent_queue, rounds):
    a, b, c = _networks(network_factory, 3)
    rounds.clear()
    with CaptureQueriesContext(connection) as queries:
        changed = status.record([Outcome(a, ObjectStatus.ACTIVE), Outcome(b, ObjectStatus.ACTIVE),
                                 Outcome(c, ObjectStatus.ERROR, "dnsmasq exited: port busy")])
    assert changed == [a, b, c]
    assert _statements(queries) == ["SELECT", "UPDATE", "UPDATE"]
    assert rounds == [[(a.pk, "active"), (b.pk, "active"), (c.pk, "error")]]
    assert Network.objects.get(pk=c.pk).status_reason == "dnsmasq exited: port busy"
    # Recording the same again changes nothing: no query, no event.
    with CaptureQueriesContext(connection) as queries:
        assert status.record([Outcome(a, ObjectStatus.ACTIVE), Outcome(b, ObjectStatus.ACTIVE)]) == []
    assert _statements(queries) == [] and len(rounds) == 1


def test_a_row_being_deleted_stays_deleting_and_keeps_only_a_failures_reason(network_factory, agent_queue, rounds):
    doomed, other = _networks(network_factory, 2)  # loaded while pending, as a job would have
    Network.objects.filter(pk__in=[doomed.pk, other.pk]).update(status=ObjectStatus.DELETING)
    rounds.clear()
    assert status.record([Outcome(doomed, ObjectStatus.ACTIVE)]) == []
    assert Network.objects.get(pk=doomed.pk).status == ObjectStatus.DELETING and rounds == []
    status.record([Outcome(other, ObjectStatus.ERROR, "teardown failed: device busy")])
    row = Network.objects.get(pk=other.pk)
    assert (row.status, row.status_reason) == (ObjectStatus.DELETING, "teardown failed: device busy")
    assert (other.status, rounds) == (ObjectStatus.DELETING, [[(other.pk, "deleting")]])


def test_only_from_guards_a_retry(network_factory, agent_queue, rounds):
    (network,) = _networks(network_factory, 1)
    network.status = ObjectStatus.ERROR  # what the job loaded; the row has moved on (pending) since
    assert status.record([Outcome(network, ObjectStatus.ACTIVE, only_from=frozenset({ObjectStatus.ERROR}))]) == []
    assert Network.objects.get(pk=network.pk).status == ObjectStatus.PENDING


def test_failure_reason_is_one_readable_line():
    assert status.failure_reason(OSError("address in use\ntraceback…")) == "address in use"
    assert status.failure_reason(TimeoutError(), "teardown failed") == "teardown failed: TimeoutError"
    assert len(status.failure_reason(ValueError("x" * 2000))) == status.REASON_LENGTH
