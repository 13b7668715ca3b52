"""Published versions of closed months: a report once served is never changed silently.

The first time a closed month's report is built it is stored byte for byte as version 1.
Built again with the same inputs, factors, methodology and code, it has the same version
id (a hash of its content) and the stored bytes are served. Anything else - an event that
arrived late, a corrected meter reading, a new factor file or methodology - gives a new
version number that names the version it supersedes and what changed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting import model, store
from services.runtime.db import insert_ignoring, rowcount

rv = store.report_versions.c


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


async def latest(session: AsyncSession, city_id: str, month: str):
    return (
        await session.execute(
            select(store.report_versions)
            .where(rv.city_id == city_id, rv.month == month)
            .order_by(rv.number.desc())
            .limit(1)
        )
    ).first()


async def stored(session: AsyncSession, city_id: str, month: str, number: int) -> bytes | None:
    row = (
        await session.execute(
            select(rv.body).where(rv.city_id == city_id, rv.month == month, rv.number == number)
        )
    ).first()
    return row.body.encode() if row else None


def _changes(previous, report: model.EmissionsReport) -> list[str]:
    v = report.version
    changed = []
    if previous.inputs_digest != v.inputs_digest:
        changed.append("inputs (events or meter readings)")
    if previous.factors_digest != v.factors_digest:
        changed.append(f"emission factors ({previous.factors_version} -> {v.factors_version})")
    if previous.methodology_version != v.methodology:
        changed.append(f"methodology ({previous.methodology_version} -> {v.methodology})")
    return changed or ["software (same inputs, factors and methodology version)"]


async def publish(
    session: AsyncSession, report: model.EmissionsReport, now: datetime
) -> model.EmissionsReport:
    """The published version of this content: the stored one if it exists, else a new
    version number. Commits."""
    for _attempt in range(3):
        previous = await latest(session, report.city.id, report.month)
        if previous is not None and previous.version_id == report.version.id:
            return model.EmissionsReport.from_json(previous.body)
        number = previous.number + 1 if previous is not None else 1
        published_ms = round(now.timestamp() * 1000)
        supersedes = (
            model.Supersedes(
                number=previous.number,
                id=previous.version_id,
                published_at=_iso(previous.published_at_ms),
                changed=_changes(previous, report),
            )
            if previous is not None
            else None
        )
        published = report.model_copy(
            update={
                "generated_at": _iso(published_ms),
                "version": report.version.model_copy(
                    update={
                        "number": number,
                        "published_at": _iso(published_ms),
                        "supersedes": supersedes,
                    }
                ),
            }
        )
        result = await session.execute(
            insert_ignoring(session, store.report_versions, "city_id", "month", "number"),
            {
                "city_id": report.city.id,
                "month": report.month,
                "number": number,
                "version_id": report.version.id,
                "published_at_ms": published_ms,
                "methodology_version": report.version.methodology,
                "factors_version": report.version.factors_version[:200],
                "factors_digest": report.version.factors_digest,
                "inputs_digest": report.version.inputs_digest,
                "body": model.to_json(published).decode(),
            },
        )
        await session.commit()
        if rowcount(result) == 1:
            return published
        # another request published this number first: look again
    raise RuntimeError(f"could not publish the report of {report.city.id} {report.month}")


async def versions(session: AsyncSession, city_id: str, month: str) -> list[dict[str, object]]:
    rows = await session.execute(
        select(
            rv.number,
            rv.version_id,
            rv.published_at_ms,
            rv.methodology_version,
            rv.factors_version,
            rv.inputs_digest,
        )
        .where(rv.city_id == city_id, rv.month == month)
        .order_by(rv.number)
    )
    return [
        {
            "number": r.number,
            "id": r.version_id,
            "published_at": _iso(r.published_at_ms),
            "methodology": r.methodology_version,
            "factors_version": r.factors_version,
            "inputs_digest": r.inputs_digest,
        }
        for r in rows
    ]
