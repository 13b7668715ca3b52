"""The hubs as a carrier sees them: the catalogue (`GET /v1/hubs`) and each hub's slot
grid per day (`GET /v1/hubs/{hub}/slots?date=`), fetched once before a run. The
simulation is a client: it plans with what the API publishes, not with the booking
service's rules."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import httpx

from contracts.hubs import HubConfig


@dataclass
class PublishedHubs:
    hubs: list[HubConfig]
    grids: dict[tuple[str, date], list[datetime]] = field(default_factory=dict)

    def slots(self, hub: HubConfig, day: date) -> list[datetime]:
        return self.grids.get((hub.id, day), [])


async def fetch_hubs(api_url: str, api_key: str, *, start: date, days: int) -> PublishedHubs:
    """The catalogue and the grids of the local days ``start - 1 … start + days``."""
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=30) as client:
        response = await client.get("/v1/hubs")
        response.raise_for_status()
        hubs = [HubConfig.model_validate(h) for h in response.json()]
        published = PublishedHubs(hubs)
        limit = asyncio.Semaphore(8)

        async def grid(hub: HubConfig, day: date) -> None:
            async with limit:
                answer = await client.get(f"/v1/hubs/{hub.id}/slots", params={"date": str(day)})
            answer.raise_for_status()
            published.grids[hub.id, day] = [
                datetime.fromisoformat(slot["start"]) for slot in answer.json()
            ]

        await asyncio.gather(
            *(grid(hub, start + timedelta(days=d)) for hub in hubs for d in range(-1, days + 1))
        )
    return published
