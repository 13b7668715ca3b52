"""Server-rendered pages for people: the hub operator's live dashboard, the city
official's report page and the carriers' bookings. Every asset ships in this package
(no CDN: the machines may be offline); the pages call the same public HTTP API as any
client, with the caller's API key (``?api_key=`` works where a browser cannot set a
header: EventSource, download links).
"""

from services.web.pages import routers

__all__ = ["routers"]
