"""Hypothesis stateful tests of the replica registry against a hostile peer (issue 20).

Rules are what peers may send (record pushes and deletes of any shape, signed by a member
or not, with any stamp), what this site does itself (sets it creates, writes it queues),
a stored row gone bad, and restarts. Invariants, after any sequence:

* a non-member never changes a set, nor sees it in the listing;
* no id belongs to two sets, and every indexed id looks like an id;
* the queue stays within its bounds;
* the registry always reopens (a restart never fails).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from edgescope.errors import Refused
from edgescope.replicas.clock import Clock, ClockTooFarAhead
from edgescope.replicas.database import sets as sets_table
from edgescope.replicas.model import Hlc, Member, PendingOp, ReplicaSet
from edgescope.replicas.peers import RecordLink, visible_to
from edgescope.replicas.registry import IdCollision, QueueBounds, QueueFull, Registry
from edgescope.replicas.validate import InvalidRecord, check_id

HERE = "Paris"
PEERS = ("Corte", "Lyon", "Evil")
BOUNDS = QueueBounds(max_ops=6, max_bytes=3000, owner_share=0.5)
VALID = ["a1a1a1a1", "b2b2b2b2", "c3c3c3c3", "d4d4d4d4", "e5e5e5e5"]  # generated-looking
ids = st.sampled_from([*VALID, "detail", "v2.1", "", "x/1", "f6" * 3, "qcow2", "1", "x86_64"])
sites = st.sampled_from((HERE, *PEERS))
states = st.sampled_from(["present", "pending", "gone"])
stamps = st.one_of(
    st.none(),
    st.builds(
        lambda wall, counter: f"{wall:013d}.{counter:06d}.Evil",
        st.integers(0, 2_000_000_000_000),
        st.sampled_from([0, 1, 999_999, 999_999_999]),
    ),
    st.sampled_from(["garbage", "1.2.3", "9999999999999.999999.E"]),
)
members = st.lists(
    st.fixed_dictionaries({"site": sites, "id": st.one_of(st.none(), ids), "state": states}),
    max_size=4,
)
records = st.fixed_dictionaries(
    {
        "handle": ids,
        "service": st.sampled_from(["image", "compute"]),
        "collection": st.sampled_from(["/things", "/servers"]),
        "members": members,
        "version": stamps,
    }
)


class HostilePeers(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="edgescope-stateful-"))
        self.open()
        self.mine = 0

    def open(self) -> None:
        self.registry = Registry(self.folder, bounds=BOUNDS)
        self.link = RecordLink(self.registry, Clock(HERE), lambda: None)  # type: ignore[arg-type,return-value]

    def teardown(self) -> None:
        self.registry.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    @rule(peer=st.sampled_from(PEERS), corte_id=ids)
    def create_here(self, peer: str, corte_id: str) -> None:
        """This site records a set ``&`` made (refused when its ids are another set's)."""
        self.mine += 1
        handle = f"{self.mine:08d}"
        made = ReplicaSet(
            handle, "image", "/things", (Member(HERE, handle), Member(peer, corte_id))
        )
        with contextlib.suppress(IdCollision, InvalidRecord):
            self.registry.put_set(made, new=True)

    @rule(peer=st.sampled_from(PEERS), kind=st.sampled_from(["set", "delete"]), doc=records)
    def push(self, peer: str, kind: str, doc: dict[str, object]) -> None:
        self.send(peer, json.dumps({kind: doc}).encode(), str(doc["handle"]))

    @rule(
        peer=st.sampled_from(PEERS),
        theirs=st.sampled_from(VALID[:3]),
        ours=st.sampled_from([*VALID[3:], "00000001", "00000002"]),
        kind=st.sampled_from(["set", "delete"]),
    )
    def push_as_a_member(self, peer: str, theirs: str, ours: str, kind: str) -> None:
        """A well-formed record of a set the peer and this site share (often accepted)."""
        doc = ReplicaSet(theirs, "image", "/things", (Member(peer, theirs), Member(HERE, ours)))
        self.send(peer, json.dumps({kind: doc.to_json()}).encode(), theirs)

    @rule(peer=st.sampled_from(PEERS), data=st.binary(max_size=40))
    def push_garbage(self, peer: str, data: bytes) -> None:
        self.send(peer, data, None)

    @rule(peer=st.sampled_from(PEERS), data=st.data())
    def push_over_a_stored_set(self, peer: str, data: st.DataObject) -> None:
        """A push that names a stored set's handle, with the members changed as it likes."""
        stored = self.registry.sets()
        if not stored:
            return
        target = data.draw(st.sampled_from(stored))
        doc = target.to_json()
        doc["members"] = data.draw(members) or doc["members"]
        doc["version"] = data.draw(stamps)
        kind = data.draw(st.sampled_from(["set", "delete"]))
        self.send(peer, json.dumps({kind: doc}).encode(), target.handle)

    def send(self, peer: str, data: bytes, handle: str | None) -> None:
        before = self.registry.fresh(handle) if handle else None
        with contextlib.suppress(Refused, InvalidRecord, ClockTooFarAhead, IdCollision):
            asyncio.run(self.link.receive_push(peer, data))
        after = self.registry.fresh(handle) if handle else None
        if before != after:  # changed: only by a member of the set before and after
            assert before is None or peer in before.sites, (peer, before, after)
            assert after is None or peer in after.sites, (peer, before, after)
            assert after is None or HERE in after.sites

    @rule(site=sites, owner=st.sampled_from(["alice", "bob"]), size=st.integers(0, 1500))
    def enqueue(self, site: str, owner: str, size: int) -> None:
        self.mine += 1
        op = PendingOp(
            f"k{self.mine}",
            None,
            site,
            "image",
            "POST",
            "/things",
            b"x" * size,
            {},
            Hlc(1, 0, HERE),
        )
        with contextlib.suppress(QueueFull):
            self.registry.enqueue(op, owner)

    @rule()
    def replay_one(self) -> None:
        queued = self.registry.pending(limit=1)
        if queued:
            self.registry.finish(queued[0].key)

    @rule(record=st.sampled_from(["{", '{"handle": 1}', '{"members": []}', "null"]))
    def a_row_goes_bad(self, record: str) -> None:
        """A row an older edgescope (or a disk) left unreadable."""
        with self.registry.engine.begin() as connection:
            connection.execute(
                sets_table.insert().values(handle=f"bad{self.mine}", record=record, changed=0)
            )
        self.mine += 1

    @rule()
    def restart(self) -> None:
        self.registry.close()
        self.open()  # never raises: bad rows are quarantined

    @invariant()
    def no_id_in_two_sets_and_every_id_looks_like_one(self) -> None:
        seen: dict[str, str] = {}
        for replica_set in self.registry.sets():
            for id_ in replica_set.ids:
                check_id(id_)
                assert seen.setdefault(id_, replica_set.handle) == replica_set.handle

    @invariant()
    def a_peer_lists_only_its_sets(self) -> None:
        for peer in PEERS:
            assert all(peer in s.sites for s in visible_to(peer, self.registry.sets()))

    @invariant()
    def the_queue_stays_within_its_bounds(self) -> None:
        count, size = self.registry.queue_usage()
        assert count <= BOUNDS.max_ops and size <= BOUNDS.max_bytes


HostilePeers.TestCase.settings = settings(max_examples=15, stateful_step_count=20, deadline=None)
test_hostile_peers = HostilePeers.TestCase
