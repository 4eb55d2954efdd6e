"""The reachability chart: SMS reachability over the last runs, as a small SVG."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from domain.quality.alerts import TrendPoint, exact


def render_reachability_svg(points: Sequence[TrendPoint], threshold: float) -> str:
    """A small SVG line chart of SMS reachability over runs, with the threshold drawn.

    Hand-written SVG (no plotting dependency); each point has a tooltip with its date and
    value, alert runs are drawn red.
    """
    width, height = 640, 260
    left, right, top, bottom = 52, 92, 36, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    limit = float(exact(threshold) * 100)
    values = [p.pct for p in points if p.pct is not None]
    low = min([*values, limit]) if values else limit
    y_min = max(0.0, (low - 2) // 5 * 5)  # a margin under the lowest point, on a 5% tick
    y_max = 100.0
    span = (y_max - y_min) or 1.0

    def y_of(pct: float) -> float:
        return top + plot_h * (y_max - pct) / span

    def x_of(i: int) -> float:
        if len(points) <= 1:
            return left + plot_w / 2
        return left + plot_w * i / (len(points) - 1)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" role="img" '
        'aria-labelledby="title">',
        f'<title id="title">SMS reachability over the last {len(points)} run(s)</title>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="20" font-size="14" font-weight="bold">'
        f"SMS reachability, last {len(points)} run{'s' if len(points) != 1 else ''}</text>",
    ]
    step = 5 if span <= 30 else 10 if span <= 60 else 20
    tick = y_max
    while tick >= y_min - 1e-9:
        y = y_of(tick)
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e5e5e5"/>'
        )
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}%</text>')
        tick -= step
    ty = y_of(limit)
    out.append(
        f'<line x1="{left}" y1="{ty:.1f}" x2="{width - right}" y2="{ty:.1f}" stroke="#c0392b" '
        'stroke-dasharray="6 4"/>'
    )
    out.append(
        f'<text x="{width - right + 8}" y="{ty + 4:.1f}" fill="#c0392b">threshold {limit:g}%</text>'
    )
    coords = [(x_of(i), y_of(p.pct), p) for i, p in enumerate(points) if p.pct is not None]
    if len(coords) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in coords)
        out.append(f'<polyline points="{path}" fill="none" stroke="#2c6fbb" stroke-width="2"/>')
    for x, y, p in coords:
        colour = "#c0392b" if p.alert else "#2c6fbb"
        label = escape(f"{p.at:%Y-%m-%d %H:%M} UTC: {p.pct:.1f}%")
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}">'
            f"<title>{label}</title></circle>"
        )
    if coords:
        x, y, last = coords[-1]
        out.append(
            f'<text x="{x:.1f}" y="{y - 10:.1f}" text-anchor="middle" '
            f'font-weight="bold">{last.pct:.1f}%</text>'
        )
    if points:
        base = height - bottom + 16
        first_label = f"{points[0].at:%Y-%m-%d}"
        out.append(f'<text x="{left}" y="{base}" text-anchor="start">{first_label}</text>')
        if len(points) > 1:
            last_label = f"{points[-1].at:%Y-%m-%d}"
            out.append(
                f'<text x="{width - right}" y="{base}" text-anchor="end">{last_label}</text>'
            )
    else:
        out.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no runs yet</text>'
        )
    if any(p.alert for p in points):
        out.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
            'fill="#c0392b">● run that raised an alert</text>'
        )
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" '
        'stroke="#999"/>'
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"
