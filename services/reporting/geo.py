"""Where a leg runs: the share of a straight leg inside a city's boundary polygon.

Planar geometry on an equirectangular projection around the polygon's mean latitude
(x = longitude x cos(mean latitude), y = latitude): at the scale of a city the error
against the sphere is far below the polygon's own accuracy. docs/methodology.md,
"City boundary", says the same in words.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from services.reporting.domain import Point


class Polygon:
    """A simple polygon of (lat, lon) vertices; even-odd rule for the inside."""

    def __init__(self, vertices: Sequence[Point]) -> None:
        if len(vertices) < 3:
            raise ValueError("a boundary polygon needs at least three vertices")
        self.scale = math.cos(math.radians(sum(v.lat for v in vertices) / len(vertices)))
        self.xy = [self._xy(v) for v in vertices]
        self.edges = list(zip(self.xy, self.xy[1:] + self.xy[:1], strict=True))

    def _xy(self, p: Point) -> tuple[float, float]:
        return (p.lon * self.scale, p.lat)

    def _inside_xy(self, x: float, y: float) -> bool:
        inside = False
        for (x1, y1), (x2, y2) in self.edges:
            if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
        return inside

    def contains(self, p: Point) -> bool:
        return self._inside_xy(*self._xy(p))

    def inside_share(self, a: Point, b: Point) -> float:
        """The share (0..1) of the straight leg a -> b that lies inside: the leg is cut at
        every crossing of an edge, and each piece whose midpoint is inside counts."""
        (ax, ay), (bx, by) = self._xy(a), self._xy(b)
        dx, dy = bx - ax, by - ay
        if dx == 0 and dy == 0:
            return 1.0 if self._inside_xy(ax, ay) else 0.0
        cuts = [0.0, 1.0]
        for (x1, y1), (x2, y2) in self.edges:
            ex, ey = x2 - x1, y2 - y1
            denominator = dx * ey - dy * ex
            if denominator == 0:
                continue  # parallel: touching along an edge adds no crossing
            t = ((x1 - ax) * ey - (y1 - ay) * ex) / denominator
            u = ((x1 - ax) * dy - (y1 - ay) * dx) / denominator
            if 0 < t < 1 and 0 <= u <= 1:
                cuts.append(t)
        cuts.sort()
        share = 0.0
        for t0, t1 in itertools.pairwise(cuts):
            middle = (t0 + t1) / 2
            if t1 > t0 and self._inside_xy(ax + middle * dx, ay + middle * dy):
                share += t1 - t0
        return min(1.0, share)
