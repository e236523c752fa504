"""Server-rendered line charts as inline SVG (no JavaScript, no CDN).

Input is numbers and fixed labels only; every text node is escaped.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 560, 160
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 8, 12, 22


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k"
    if abs(value) >= 10:
        return f"{value:.0f}"
    return f"{value:.2g}"


def line_chart(
    *,
    title: str,
    points: list[tuple[datetime, float]],
    end: datetime,
    span: timedelta = timedelta(hours=24),
) -> SafeString:
    """An SVG line chart of ``points`` over [end - span, end] with min/max labels."""
    start = end - span
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    values = [v for _, v in points]
    top = max(values) if values else 0.0
    top = top if top > 0 else 1.0
    seconds = span.total_seconds()

    def xy(at: datetime, value: float) -> str:
        x = PAD_LEFT + plot_w * min(max((at - start).total_seconds() / seconds, 0), 1)
        y = PAD_TOP + plot_h * (1 - min(max(value / top, 0), 1))
        return f"{x:.1f},{y:.1f}"

    path = " ".join(xy(at, v) for at, v in points if at >= start)
    label = escape(title)
    latest = _fmt(values[-1]) if values else "no data"
    parts = [
        f'<svg class="ops-chart" role="img" aria-label="{label}" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{label}</title>",
        f'<rect x="{PAD_LEFT}" y="{PAD_TOP}" width="{plot_w}" height="{plot_h}" '
        'fill="#f8f8f8" stroke="#ccc"/>',
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 10}" text-anchor="end" '
        f'font-size="10">{escape(_fmt(top))}</text>',
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + plot_h}" text-anchor="end" '
        'font-size="10">0</text>',
        f'<text x="{PAD_LEFT}" y="{HEIGHT - 6}" font-size="10">'
        f"{escape(start.strftime('%b %d %H:%M'))}</text>",
        f'<text x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - 6}" text-anchor="end" '
        f'font-size="10">{escape(end.strftime("%b %d %H:%M"))} UTC</text>',
        f'<text x="{PAD_LEFT + 6}" y="{PAD_TOP + 12}" font-size="11" '
        f'font-weight="bold">{label}: {escape(latest)}</text>',
    ]
    if len(points) > 1:
        parts.append(
            f'<polyline fill="none" stroke="#2a6ebb" stroke-width="1.5" points="{path}"/>'
        )
    elif len(points) == 1:
        x, y = xy(*points[0]).split(",")
        parts.append(f'<circle cx="{x}" cy="{y}" r="2" fill="#2a6ebb"/>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — numbers and escaped labels only
