"""The simulation asks a consumer group's coordinator once, and again when it moved."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import NotCoordinatorForGroupError
from aiokafka.structs import OffsetAndMetadata

from contracts.topics import BOOKING_COMMANDS
from services.runtime.settings import Settings
from services.simulation.catalogue import PublishedHubs
from services.simulation.driver import Simulation


class FakeAdmin:
    """Coordinator look-ups and offset requests, as the admin client answers them."""

    def __init__(self, coordinators: list[int], served_by: int) -> None:
        self.coordinators = coordinators  # answers of successive look-ups
        self.served_by = served_by  # the node that answers offset requests
        self.lookups = 0
        self.requests: list[int | None] = []

    async def find_coordinator(self, group: str) -> int:
        self.lookups += 1
        return self.coordinators.pop(0)

    async def list_consumer_group_offsets(self, group, coordinator=None, partitions=None):
        self.requests.append(coordinator)
        if coordinator != self.served_by:
            raise NotCoordinatorForGroupError(f"{coordinator} is not {group}'s coordinator")
        return {tp: OffsetAndMetadata(7, "") for tp in partitions[:1]}


def _simulation(admin: FakeAdmin) -> Simulation:
    sim = Simulation(
        Settings(),
        ["127.0.0.1:9"],
        days=1,
        seed=1,
        hubs=PublishedHubs([]),
        driving_groups={"booking": BOOKING_COMMANDS.name},
        projection_groups={},
    )
    sim.admin = admin
    sim.partitions = {BOOKING_COMMANDS.name: [TopicPartition("t", 0), TopicPartition("t", 1)]}
    return sim


async def test_the_coordinator_is_looked_up_once() -> None:
    admin = FakeAdmin(coordinators=[1], served_by=1)
    sim = _simulation(admin)
    for _ in range(3):
        committed = await sim._committed("g", BOOKING_COMMANDS.name)
    assert committed == {TopicPartition("t", 0): 7, TopicPartition("t", 1): 0}
    assert admin.lookups == 1
    assert admin.requests == [1, 1, 1]


async def test_a_moved_coordinator_is_looked_up_again() -> None:
    admin = FakeAdmin(coordinators=[1, 2], served_by=1)
    sim = _simulation(admin)
    await sim._committed("g", BOOKING_COMMANDS.name)
    admin.served_by = 2  # the group moved to node 2
    committed = await sim._committed("g", BOOKING_COMMANDS.name)
    assert committed[TopicPartition("t", 0)] == 7
    assert admin.requests == [1, 1, 2]
    assert admin.lookups == 2


async def test_a_coordinator_that_keeps_failing_is_an_error() -> None:
    admin = FakeAdmin(coordinators=[3, 3], served_by=1)
    with pytest.raises(NotCoordinatorForGroupError):
        await _simulation(admin)._committed("g", BOOKING_COMMANDS.name)
    assert admin.lookups == 2
