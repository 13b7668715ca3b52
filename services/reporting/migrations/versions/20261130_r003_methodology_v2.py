"""methodology v2: baseline inputs and tours per carrier-day, hub energy, report versions

Revision ID: 20261130_r003
Revises: 20261130_r002
Create Date: 2026-11-30 05:00:00

The v1 columns baseline_m, baseline_trips and trunk_m (road metres of one tour per
consignment, with the circuity of the day) are dropped: v2 keeps great-circle metres of
tours per carrier-day, computed from each consignment's depot and stops, which a v1
projection does not hold. A report over consignments confirmed before this revision says
so (HTTP 422) and names the fix: rebuild the projection from the topics
(`microhub reporting rebuild`, docs/deploy.md), which keep every event for ever.
"""

from typing import Any

from alembic import op
import sqlalchemy as sa


revision = '20261130_r003'
down_revision = '20261130_r002'
branch_labels = None
depends_on = None

NEW_CONSIGNMENT_COLUMNS: list[tuple[str, sa.types.TypeEngine[Any]]] = [
    ('depot_lat', sa.Float()),
    ('depot_lon', sa.Float()),
    ('baseline_day', sa.String(length=10)),
    ('weight_g', sa.BigInteger()),
    ('activity_kgm', sa.BigInteger()),
    ('trunk_activity_kgm', sa.BigInteger()),
    ('derived_params', sa.String(length=32)),
    ('tours_gc_m', sa.BigInteger()),
    ('tours_city_gc_m', sa.BigInteger()),
    ('tours_x1000', sa.BigInteger()),
    ('tours_city_x1000', sa.BigInteger()),
    ('trunk_gc_m', sa.BigInteger()),
    ('trunk_city_gc_m', sa.BigInteger()),
    ('trunk_city_trips', sa.Integer()),
]


def upgrade() -> None:
    with op.batch_alter_table('consignments', schema=None) as batch_op:
        for name, type_ in NEW_CONSIGNMENT_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        batch_op.alter_column('trunk_trips', existing_type=sa.Integer(), nullable=True)
        batch_op.drop_column('baseline_m')
        batch_op.drop_column('baseline_trips')
        batch_op.drop_column('trunk_m')
        batch_op.create_index('ix_consignments_city_day', ['city_id', 'baseline_day'], unique=False)
    op.create_table('consignment_stops',
    sa.Column('booking_id', sa.String(length=100), nullable=False),
    sa.Column('stop_id', sa.String(length=64), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('parcels', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('booking_id', 'stop_id', name=op.f('pk_consignment_stops'))
    )
    with op.batch_alter_table('route_consignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('activity_kgm', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('trip_x1000', sa.Integer(), nullable=False, server_default='0'))
    op.create_table('hub_energy',
    sa.Column('hub_id', sa.String(length=64), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('wh', sa.BigInteger(), nullable=False),
    sa.Column('supplier_gco2e_per_kwh', sa.Float(), nullable=True),
    sa.Column('meter', sa.String(length=200), nullable=False),
    sa.Column('note', sa.String(length=1000), nullable=False),
    sa.Column('reported_by', sa.String(length=200), nullable=False),
    sa.Column('reported_at_ms', sa.BigInteger(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('hub_id', 'month', name=op.f('pk_hub_energy'))
    )
    op.create_table('report_versions',
    sa.Column('city_id', sa.String(length=64), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.String(length=80), nullable=False),
    sa.Column('published_at_ms', sa.BigInteger(), nullable=False),
    sa.Column('methodology_version', sa.String(length=20), nullable=False),
    sa.Column('factors_version', sa.String(length=200), nullable=False),
    sa.Column('factors_digest', sa.String(length=80), nullable=False),
    sa.Column('inputs_digest', sa.String(length=80), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('city_id', 'month', 'number', name=op.f('pk_report_versions'))
    )


def downgrade() -> None:
    op.drop_table('report_versions')
    op.drop_table('hub_energy')
    with op.batch_alter_table('route_consignments', schema=None) as batch_op:
        batch_op.drop_column('trip_x1000')
        batch_op.drop_column('activity_kgm')
    op.drop_table('consignment_stops')
    with op.batch_alter_table('consignments', schema=None) as batch_op:
        batch_op.drop_index('ix_consignments_city_day')
        batch_op.add_column(sa.Column('trunk_m', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('baseline_trips', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('baseline_m', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.alter_column('trunk_trips', existing_type=sa.Integer(), nullable=False)
        for name, _type in reversed(NEW_CONSIGNMENT_COLUMNS):
            batch_op.drop_column(name)
