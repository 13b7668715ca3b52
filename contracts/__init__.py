"""microhub's message contracts: envelope, payload models, topic table.

Importing this package registers every message type (see ``envelope.REGISTRY``).
"""

from contracts import booking as booking
from contracts import carriers as carriers
from contracts import dispatch as dispatch
from contracts import fleet as fleet
from contracts.envelope import REGISTRY, CloudEvent, ContractError, decode, encode, new_event
from contracts.topics import TOPICS, Topic

__all__ = [
    "REGISTRY",
    "TOPICS",
    "CloudEvent",
    "ContractError",
    "Topic",
    "decode",
    "encode",
    "new_event",
]
