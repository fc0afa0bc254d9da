#!/usr/bin/env python3
"""Turn a compare.sh results directory into one table (markdown, printed and
written to table.md), results.json and chart.svg. Standard library only."""
import json
import pathlib
import sys

out = pathlib.Path(sys.argv[1])
runs = {}
for f in sorted(out.glob("*.json")):
    if f.name == "results.json":
        continue
    server, load = f.stem.split(".", 1)
    runs.setdefault(server, {})[load] = json.loads(f.read_text())

SERVERS = ["prosody", "ejabberd", "rookery-smol", "rookery-std", "rookery-smol-unpinned", "peer"]
NAMES = {
    "prosody": "Prosody 0.12",
    "ejabberd": "ejabberd 23.01",
    "rookery-smol": "rookery-smol",
    "rookery-std": "rookery-std",
    "rookery-smol-unpinned": "rookery-smol, unpinned",
    "peer": "load generator ceiling (echo peer)",
}


def get(server, load, *path):
    value = runs.get(server, {}).get(load)
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def errors(server, load):
    e = get(server, load, "errors") or {}
    return sum(e.values())


# (column title, load, path, higher is better, format)
COLUMNS = [
    ("msgs/s, 200 sessions, window 10", "pairs200", ("messages", "per_second"), True, "{:,.0f}"),
    ("msgs/s, 2,000 sessions, window 5", "pairs2000", ("messages", "per_second"), True, "{:,.0f}"),
    ("p99 ms, open loop 5,000/s", "rate5000", ("messages", "p99_ms"), False, "{:.2f}"),
    ("p50 ms, open loop", "rate5000", ("messages", "p50_ms"), False, "{:.2f}"),
    ("SCRAM-SHA-1 logins/s", "login2000", ("login", "per_second"), True, "{:,.0f}"),
    ("KiB per idle session (10,000)", "idle10000", ("server", "rss_per_session_kib"), False, "{:.1f}"),
    ("KiB per idle session (19,000)", "idle19000", ("server", "rss_per_session_kib"), False, "{:.1f}"),
]
# The quick run uses smaller idle loads.
idle_loads = sorted({f.stem.split(".", 1)[1] for f in out.glob("*.idle*.json")} - {"idle10000", "idle19000"},
                    key=lambda load: int(load[4:]))
for load in idle_loads:
    COLUMNS.append((f"KiB per idle session ({int(load[4:]):,})", load, ("server", "rss_per_session_kib"), False, "{:.1f}"))
COLUMNS = [c for c in COLUMNS if any(get(s, c[1], *c[2]) is not None for s in runs)]


def cell(server, column):
    _, load, path, _, fmt = column
    value = get(server, load, *path)
    if value is None:
        return "–"
    text = fmt.format(value)
    if errors(server, load):
        text += f" ({errors(server, load)} errors)"
    return text


def ratio(server, reference, column):
    _, load, path, higher, _ = column
    a, b = get(server, load, *path), get(reference, load, *path)
    if not a or not b:
        return "–"
    return f"{(a / b if higher else b / a):.1f}×"


lines = ["| server | " + " | ".join(c[0] for c in COLUMNS) + " |",
         "|---|" + "---|" * len(COLUMNS)]
for server in SERVERS:
    if server in runs:
        lines.append(f"| {NAMES[server]} | " + " | ".join(cell(server, c) for c in COLUMNS) + " |")
for server in ("rookery-smol", "rookery-std"):
    for reference in ("prosody", "ejabberd"):
        if server in runs and reference in runs:
            lines.append(f"| {server} vs {NAMES[reference]} (better by) | "
                         + " | ".join(ratio(server, reference, c) for c in COLUMNS) + " |")
table = "\n".join(lines) + "\n"
print(table)
(out / "table.md").write_text(table)
(out / "results.json").write_text(json.dumps(runs, indent=2) + "\n")

# chart.svg: one panel per load, one bar per server.
import math

COLORS = {"prosody": "#6c8ebf", "ejabberd": "#82b366", "rookery-smol": "#d6762b",
          "rookery-std": "#b85450", "rookery-smol-unpinned": "#f0b67f", "peer": "#999999"}
shown = [s for s in SERVERS if s in runs and s != "peer"]


def idle_value(server):
    """KiB per idle session at the largest size measured below 19,000."""
    sizes = sorted((int(load[4:]), load) for load in runs.get(server, {}) if load.startswith("idle"))
    sizes = [x for x in sizes if x[0] < 19000] or sizes
    if not sizes:
        return None, None
    n, load = sizes[-1]
    return get(server, load, "server", "rss_per_session_kib"), n


# (title, value of a server, higher is better, log scale, format)
PANELS = [
    ("msgs/s, 200 sessions, window 10", lambda s: get(s, "pairs200", "messages", "per_second"), True, False, "{:,.0f}"),
    ("msgs/s, 2,000 sessions, window 5", lambda s: get(s, "pairs2000", "messages", "per_second"), True, False, "{:,.0f}"),
    ("p99 ms, open loop 5,000 msgs/s (log scale)", lambda s: get(s, "rate5000", "messages", "p99_ms"), False, True, "{:.2f}"),
    ("SCRAM-SHA-1 logins/s", lambda s: get(s, "login2000", "login", "per_second"), True, False, "{:,.0f}"),
    ("KiB per idle session", lambda s: idle_value(s)[0], False, False, "{:.1f}"),
]
pw, ph, bar = 250, 240, 30
width = pw * len(PANELS) + 20
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{ph + 90}" '
       'font-family="sans-serif" font-size="11">',
       f'<rect width="{width}" height="{ph + 90}" fill="white"/>']
for i, (title, value_of, higher, log, fmt) in enumerate(PANELS):
    x0 = 20 + i * pw
    values = [(s, value_of(s)) for s in shown]
    present = [v for _, v in values if v]
    top = max(present, default=1) or 1
    low = min(present, default=1) or 1
    def height(v):
        if log:
            return (ph - 60) * (0.1 + 0.9 * math.log(v / low + 1e-9 + 1) / math.log(top / low + 1))
        return (ph - 60) * v / top
    svg.append(f'<text x="{x0 + (pw - 20) / 2}" y="16" text-anchor="middle" font-weight="bold">'
               f'{title}</text>')
    svg.append(f'<text x="{x0 + (pw - 20) / 2}" y="30" text-anchor="middle" fill="#555">'
               f'{"higher" if higher else "lower"} is better</text>')
    for j, (server, value) in enumerate(values):
        x = x0 + 10 + j * (bar + 8)
        if not value:
            continue
        h = height(value)
        y = 40 + (ph - 60) - h
        label = fmt.format(value)
        if server == "rookery-std" and title.startswith("KiB"):
            label += f" ({idle_value(server)[1]:,})"
        svg.append(f'<rect x="{x}" y="{y:.1f}" width="{bar}" height="{h:.1f}" fill="{COLORS[server]}"/>')
        svg.append(f'<text x="{x + bar / 2}" y="{y - 3:.1f}" text-anchor="middle" font-size="9">'
                   f'{label}</text>')
    svg.append(f'<line x1="{x0 + 5}" y1="{ph - 20}" x2="{x0 + pw - 25}" y2="{ph - 20}" stroke="#333"/>')
for j, server in enumerate(shown):
    x = 20 + j * 200
    svg.append(f'<rect x="{x}" y="{ph + 20}" width="12" height="12" fill="{COLORS[server]}"/>')
    svg.append(f'<text x="{x + 16}" y="{ph + 30}">{NAMES[server]}</text>')
svg.append(f'<text x="20" y="{ph + 60}" fill="#555">Each server pinned to one core, '
           'rookery-load on the other (except the unpinned bars); idle memory at 10,000 sessions '
           '(rookery-std at 5,000, under its ceiling). Command: bash bench/compare.sh</text>')
svg.append("</svg>")
(out / "chart.svg").write_text("\n".join(svg) + "\n")
print(f"wrote {out}/table.md, results.json, chart.svg", file=sys.stderr)
