"""The report page's stylesheet, inlined into ``index.html`` (the page loads nothing else)."""

from __future__ import annotations

STYLE = """
:root { --ink: #1d2329; --muted: #5b6670; --line: #d9dee3; --bad: #b42318; --bad-bg: #fdecea;
  --good: #1a7f37; --good-bg: #e8f5ec; --accent: #2c6fbb; --card: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 36px 0 10px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05em; margin: 0 0 6px; }
p.lead { color: var(--muted); margin: 0 0 18px; }
.alert { border: 1px solid var(--bad); background: var(--bad-bg); color: var(--bad);
  padding: 12px 16px; border-radius: 6px; margin: 16px 0; font-weight: 600; }
.ok { border: 1px solid var(--good); background: var(--good-bg); color: var(--good);
  padding: 12px 16px; border-radius: 6px; margin: 16px 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr));
  gap: 12px; margin: 16px 0; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 12px 14px; }
.card .value { font-size: 1.7em; font-weight: 700; }
.card .label { color: var(--muted); font-size: 0.9em; }
.card .change { color: var(--muted); font-size: 0.85em; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 12px; font-size: 0.95em; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: var(--card); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.check { border: 1px solid var(--line); border-left: 5px solid var(--bad); border-radius: 6px;
  padding: 12px 16px; margin: 12px 0; }
.check dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 0; }
.check dt { color: var(--muted); }
.check dd { margin: 0; }
.pass { color: var(--good); font-weight: 700; }
.fail { color: var(--bad); font-weight: 700; }
code { background: var(--card); border: 1px solid var(--line); border-radius: 4px;
  padding: 0 4px; font-size: 0.92em; }
.chart svg { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--accent); }
a { color: var(--accent); }
footer { margin-top: 40px; color: var(--muted); font-size: 0.9em; }
@media print { details { display: block; } .card { break-inside: avoid; } }
"""
