"""`GET /`: the dashboard — one server-rendered page, no script, no asset from anywhere else.

It shows what `/progress` says (both sides, RPO, the forecast) plus what only the daemon
keeps: the 24 h RPO history (site/rpo_history.py) drawn as inline SVG, per-table lag, the
set history from backuprestoreinfo.csv and the last errors of passes. It refreshes itself
(`<meta http-equiv=refresh>`) and is read-only: changes stay behind the token API. Works with
no network at all, so it can be opened on a DR host cut off from everything else.

Every value a test or a person may want to find carries an `id` or a `data-*` attribute.
"""

from __future__ import annotations

import time
from html import escape
from pathlib import Path
from typing import Any

from drsync.site.document import ProgressDocument, Verification
from drsync.site.rpo_history import WINDOW_S, Sample
from drsync.site.state import SideProgress, StandbyState, local_time, read_history

REFRESH_S = 5
CHART_W, CHART_H = 720, 160

_STYLE = """
body{font:14px system-ui,sans-serif;margin:1.2em;color:#1d2430;background:#f6f7f9}
h1{font-size:1.3em;margin:0 0 .6em} h2{font-size:1.05em;margin:1.2em 0 .4em}
.sides{display:flex;gap:1em;flex-wrap:wrap} .card{background:#fff;border:1px solid #d9dde3;
border-radius:6px;padding:.8em 1em;min-width:320px;flex:1}
.state{font-weight:600;padding:.1em .5em;border-radius:4px;background:#e4e8ee}
.abnormal{background:#f8d7da;color:#842029} .stopped{background:#fff3cd}
.bar{background:#e4e8ee;border-radius:3px;height:10px;width:100%} .bar div{background:#3a7bd5;
height:10px;border-radius:3px} table{border-collapse:collapse;background:#fff}
td,th{border:1px solid #d9dde3;padding:.25em .6em;text-align:left;font-size:13px}
.warn{color:#842029;font-weight:600} .dim{color:#6b7280}
"""


def _side_card(title: str, side_id: str, state: str, side: SideProgress) -> str:
    percent = side.progress.rstrip("%") or "0"
    rates = side.backupRate
    rows = [("key", side.key or "-"), ("prior key", side.priorKey), ("step", side.currentStep),
            ("producer rate", rates.producerRate), ("compress rate", rates.compressRate),
            ("consumer rate", rates.consumerRate), ("pending keys", side.unrestoreKeys),
            ("updated", side.updateTime or "-")]
    if side.errorMsg:
        rows.append(("error", f"{side.errorMsg} ({side.errorCode}, step {side.failedStep})"))
    body = "".join(f"<tr><th>{escape(k)}</th><td data-field='{escape(k)}'>{escape(v)}</td></tr>"
                   for k, v in rows)
    return (f"<div class='card' id='{side_id}'><h2>{escape(title)} "
            f"<span class='state {escape(state)}' data-field='state'>{escape(state)}</span></h2>"
            f"<div class='bar' title='{escape(side.progress)}'><div style='width:{escape(percent)}%'>"
            f"</div></div><div data-field='progress'>{escape(side.progress)}</div>"
            f"<table>{body}</table></div>")


def rpo_chart(samples: list[Sample], target_s: float | None, now_s: float) -> str:
    """The last 24 h of RPO as an SVG polyline (time right = now), with the target as a line."""
    points = [(t, rpo) for t, rpo in samples if rpo is not None and now_s - t <= WINDOW_S]
    top = max([rpo for _, rpo in points] + [target_s or 0, 1])
    scale_y = (CHART_H - 20) / top

    def xy(t: float, v: float) -> str:
        return f"{(1 - (now_s - t) / WINDOW_S) * CHART_W:.1f},{CHART_H - 10 - v * scale_y:.1f}"

    line = " ".join(xy(t, rpo) for t, rpo in points)
    parts = [f"<svg id='rpo-chart' width='{CHART_W}' height='{CHART_H}' role='img' "
             f"aria-label='RPO over the last 24 hours' data-samples='{len(points)}' "
             "style='background:#fff;border:1px solid #d9dde3'>"]
    if target_s:
        y = CHART_H - 10 - target_s * scale_y
        parts.append(f"<line x1='0' x2='{CHART_W}' y1='{y:.1f}' y2='{y:.1f}' stroke='#d9534f' "
                     f"stroke-dasharray='4 3'><title>rpo-target {target_s:g} s</title></line>")
    if points:
        parts.append(f"<polyline fill='none' stroke='#3a7bd5' stroke-width='1.5' points='{line}'/>")
    parts.append(f"<text x='4' y='14' font-size='11' fill='#6b7280'>max {top:.0f} s</text>"
                 f"<text x='{CHART_W - 4}' y='{CHART_H - 2}' font-size='11' fill='#6b7280' "
                 f"text-anchor='end'>now</text><text x='4' y='{CHART_H - 2}' font-size='11' "
                 "fill='#6b7280'>24 h ago</text></svg>")
    return "".join(parts)


def _lag_table(standby: StandbyState, now_s: float, limit: int = 50) -> str:
    lags = sorted(((now_s - t.barrier_ms / 1000, name, t.version) for name, t in standby.tables.items()),
                  reverse=True)
    rows = "".join(f"<tr data-table='{escape(name)}'><td>{escape(name)}</td><td>{v}</td>"
                   f"<td data-field='lag'>{max(0, int(lag))}</td></tr>" for lag, name, v in lags[:limit])
    more = f"<p class='dim'>{len(lags) - limit} more</p>" if len(lags) > limit else ""
    return (f"<table id='table-lag'><tr><th>table</th><th>standby version</th><th>seconds behind</th></tr>"
            f"{rows}</table>{more}")


def _sets_table(history: list[dict[str, str]], limit: int = 15) -> str:
    rows = "".join(
        f"<tr><td>{escape(r.get('key', ''))}</td><td>{escape(r.get('action', ''))}</td>"
        f"<td>{escape(r.get('status', ''))}</td><td>{escape(r.get('tables', ''))}</td>"
        f"<td>{escape(r.get('bytes', ''))}</td><td>{escape(r.get('seconds', ''))}</td></tr>"
        for r in reversed(history[-limit:]))
    return ("<table id='sets'><tr><th>key</th><th>action</th><th>status</th><th>tables</th>"
            f"<th>bytes</th><th>seconds</th></tr>{rows}</table>")


def _verification(v: Verification) -> str:
    """Continuous verification (standby/continuous.py): restorable as of which barrier, and what
    was found missing or damaged (repaired, or flagged because the primary cannot give it back)."""
    if v.intervalSeconds is None:
        return ("<p id='verification' class='dim'>no continuous verification readable on this host "
                "(verify-interval N/A, or it runs on the standby's host)</p>")
    flagged = "".join(f"<li data-table='{escape(n)}'>{escape(n)}: {escape('; '.join(p))}</li>"
                      for n, p in v.flagged.items())
    recent = "".join(f"<li>{escape(line)}</li>" for line in reversed(v.recent))
    cls = " class='warn'" if v.flagged else ""
    return (f"<div id='verification'><p{cls}>verified restorable as of barrier "
            f"<b data-field='verified-barrier'>{escape(v.verifiedBarrierTime or 'not yet')}</b> · "
            f"<span data-field='verified-tables'>{v.verifiedTables}</span> of {v.tables} tables clean · "
            f"every table checked once per {v.intervalSeconds} s</p>"
            + (f"<ul id='verification-flagged'>{flagged}</ul>" if flagged else "")
            + (f"<ul id='verification-recent' class='dim'>{recent}</ul>" if recent else "") + "</div>")


def render_page(doc: ProgressDocument, standby: StandbyState, *, role: str, samples: list[Sample],
                history: list[dict[str, str]], errors: list[str], target_s: float | None,
                now_s: float | None = None) -> str:
    now_s = time.time() if now_s is None else now_s
    f = doc.rpo_forecast
    warn = " class='warn'" if f.breachPredicted else ""
    errs = "".join(f"<li>{escape(e)}</li>" for e in reversed(errors)) or "<li class='dim'>none</li>"
    return "".join([
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<meta http-equiv='refresh' content='{REFRESH_S}'><title>drsync {escape(role)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>drsync — this daemon is the {escape(role)} <span class='dim'>({escape(local_time(now_s))}, "
        f"refreshes every {REFRESH_S} s)</span></h1>",
        "<div class='sides'>",
        _side_card("primary", "primary", doc.apply.backupState, doc.primary_cluster),
        _side_card("standby", "standby", doc.apply.restoreState, doc.standby_cluster),
        "</div>",
        f"<p>latest barrier <b id='latest-barrier'>{escape(doc.latestBarrierTime or '-')}</b> · RPO now "
        f"<b id='rpo-now'>{escape(doc.recovery_point_objective or '-')}</b> s"
        + (f" · rpo-target {target_s:g} s" if target_s else "") + "</p>",
        f"<p id='forecast'{warn}>forecast: {escape(f.note or '-')}</p>",
        "<h2>RPO, last 24 h</h2>", rpo_chart(samples, target_s, now_s),
        "<h2>Tables by lag</h2>", _lag_table(standby, now_s),
        "<h2>Recent sets</h2>", _sets_table(history),
        f"<h2>Last errors</h2><ul id='errors'>{errs}</ul>",
        "<h2>Verification</h2>", _verification(doc.verification),
        "</body></html>",
    ])


def history_rows(metas: list[Path], csv_name: str) -> list[dict[str, Any]]:
    """Rows of both sides' set history this host can read, in key order."""
    rows: list[dict[str, Any]] = []
    for meta in metas:
        rows += read_history(meta / csv_name)[-50:]
    return sorted(rows, key=lambda r: (r.get("key", ""), r.get("action", "")))
