"""What a real broker says of a consumer group: its state, members and their partitions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment


@dataclass(frozen=True)
class Group:
    state: str
    # member's client id -> the partitions it was assigned, as (topic, partition)
    members: dict[str, frozenset[tuple[str, int]]]

    def stable_with(self, clients: set[str]) -> bool:
        """Stable, with exactly these members, each holding at least one partition."""
        return (
            self.state == "Stable"
            and set(self.members) == clients
            and all(self.members[c] for c in clients)
        )


async def describe_group(bootstrap: list[str], group_id: str) -> Group:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group_id])
    finally:
        await admin.close()
    _error, _group, state, _protocol_type, _protocol, members = response.groups[0][:6]
    assigned: dict[str, frozenset[tuple[str, int]]] = {}
    for _member_id, client_id, _host, _metadata, assignment in members:
        partitions: set[tuple[str, int]] = set()
        if assignment:
            decoded = ConsumerProtocolMemberAssignment.decode(assignment)
            for topic, numbers in decoded.assignment:
                partitions |= {(topic, n) for n in numbers}
        assigned[client_id] = frozenset(partitions)
    return Group(state, assigned)


async def lag(bootstrap: list[str], group_id: str, topic: str) -> int:
    """Records of ``topic`` the group has not committed yet (all partitions)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        [described] = await admin.describe_topics([topic])
        partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        committed = await admin.list_consumer_group_offsets(group_id)
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
        await admin.close()
    return sum(
        max(0, end - (committed[tp].offset if tp in committed else 0)) for tp, end in ends.items()
    )


async def drained(service: Any, reader: Any, *, timeout: float = 60) -> None:
    """Everything ``service`` was sent is decided and in ``reader``: each of its consumer
    groups has committed every record of its topic, its outbox is published, and the
    reader has read its topic to the end. What arrives later would be a duplicate."""
    from tests.support.waiting import eventually

    settings = service.settings
    for consumer in service.consumers:

        async def committed(c: Any = consumer) -> bool:
            return await lag(service.bootstrap, settings.group(c.name), c.topic) == 0

        await eventually(committed, what=f"{consumer.name} to commit everything", timeout=timeout)
    if service.relay is not None:
        await service.relay.flush()
    await eventually(
        reader.at_end, what=f"the reader at the end of {reader.topic}", timeout=timeout
    )
