"""Lab 16: operating AI infrastructure under fire: "Operating AI Infrastructure Under Fire"
(seed section 16).

Activities: each incident scenario in the package (a thermally throttled straggler, an NCCL hang,
an Xid 79 storm on one rack, an OOM crash loop, a poisoned GPU that keeps eating retries) is run
twice: with the action a hurried responder takes and with the safer one. For each: the signals
a responder sees over time, the structured debugging path, the cost of each recovery action, and
a generated postmortem whose figures are read off the simulated timeline.
"""

from __future__ import annotations

from html import escape as html_escape
from pathlib import Path
from typing import Any

from gpuinfra.catalog.prices import gpu_hour_price
from gpuinfra.labs import write_lab, write_lab_file
from gpuinfra.models.incidents import INCIDENTS
from gpuinfra.report.figs import line_figure
from gpuinfra.report.html import fig_html
from gpuinfra.report.page import Section, render_page, table_html

TITLE = "Operating AI Infrastructure Under Fire"


def shown_hours(x: float) -> int:
    """GPU-hours as the report shows them (whole hours); totals and differences use these."""
    return round(x)


def run(out_dir: Path, design: Path | None = None, quick: bool = False, workers: int | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    price = gpu_hour_price("H100-SXM").on_demand_usd or 0.0
    results: dict[str, Any] = {}
    (out_dir / "postmortems").mkdir(exist_ok=True)
    objs = {}
    for name, (fn, actions) in INCIDENTS.items():
        runs = {}
        for a in actions:
            inc = fn(a, usd=price)
            objs[(name, a)] = inc
            runs[a] = {"gpu_hours_lost": inc.gpu_hours_lost, "usd_lost": inc.usd_lost, "postmortem": inc.postmortem()}
            write_lab_file(out_dir / "postmortems" / f"{name}--{a}.md", inc.postmortem_markdown())
        results[name] = {
            "title": objs[(name, actions[0])].title,
            "hurried": actions[0],
            "safer": actions[1],
            "runs": runs,
        }
    s = {"schema": "gpuinfra.lab16/1", "usd_per_gpu_hour": price, "incidents": results}
    return write_lab(out_dir, s, render(s, objs))


def render(s: dict[str, Any], objs) -> str:
    f: list[str] = []
    secs: list[Section] = []
    total_h = total_s = 0
    rows = []
    usd = s["usd_per_gpu_hour"]
    for r in s["incidents"].values():
        h, sa = r["runs"][r["hurried"]], r["runs"][r["safer"]]
        # every total and difference is made of the numbers the reader sees (whole GPU-hours)
        gh, gs = shown_hours(h["gpu_hours_lost"]), shown_hours(sa["gpu_hours_lost"])
        total_h += gh
        total_s += gs
        rows.append(
            [
                r["title"],
                r["hurried"],
                f"{gh:,}",
                f"${gh * usd:,.0f}",
                r["safer"],
                f"{gs:,}",
                f"${gs * usd:,.0f}",
                f"{h['postmortem']['impact']['time_to_detect_min']} -> {sa['postmortem']['impact']['time_to_detect_min']}",
            ]
        )
    claim0 = (
        f"Across the {len(s['incidents'])} incidents the hurried actions cost {total_h:,} GPU-hours (${total_h * usd:,.0f}); the safer ones {total_s:,} "
        f"(${total_s * usd:,.0f}), {total_h - total_s:,} GPU-hours (${(total_h - total_s) * usd:,.0f}) less. The difference is detection (what the alerts watch) and not resetting or retrying into a sticky fault."
    )
    secs.append(
        Section(
            "Summary: actions and their cost",
            table_html(
                ["incident", "hurried action", "GPU-h", "cost", "safer action", "GPU-h", "cost", "minutes to detect"],
                rows,
            ),
            claim0,
            f"Price ${s['usd_per_gpu_hour']:.2f} per H100-hour (median of the packaged catalog).",
        )
    )
    f.append(claim0)
    for k, (name, r) in enumerate(s["incidents"].items()):
        a, b = objs[(name, r["hurried"])], objs[(name, r["safer"])]
        fig = line_figure(
            {
                f"step rate ({r['hurried']})": [(m.t, m.step_rate) for m in a.minutes],
                f"step rate ({r['safer']})": [(m.t, m.step_rate) for m in b.minutes],
                f"GPU_UTIL/100 ({r['hurried']})": [(m.t, m.gpu_util / 100) for m in a.minutes],
                f"SM_ACTIVE ({r['hurried']})": [(m.t, m.sm_active) for m in a.minutes],
            },
            f"{r['title']}: what the responder sees",
            "time since the incident began (minutes)",
            "fraction of normal (ratio; 1 = healthy)",
            logx=False,
            mode="lines",
        )
        pm = b.postmortem()
        ga, gb = shown_hours(a.gpu_hours_lost), shown_hours(b.gpu_hours_lost)
        saved = ga - gb
        claim = (
            f"{r['title']}: {r['hurried']} loses {ga:,} GPU-hours, {r['safer']} {gb:,} "
            f"({saved:,} {'saved' if saved >= 0 else 'more'}, ${abs(saved) * usd:,.0f}); the first signal fires {pm['impact']['time_to_detect_min']} min after the fault with the safer design."
        )
        steps = "".join(f"<li>{html_escape(x)}</li>" for x in b.debug_path)
        md = b.postmortem_markdown().replace("&", "&amp;").replace("<", "&lt;")
        html = (
            fig_html(fig, f"inc{k}")
            + f"<p><b>Debugging path</b></p><ol>{steps}</ol><details><summary>Postmortem ({html_escape(r['safer'])})</summary><pre style='white-space: pre-wrap'>{md}</pre></details>"
        )
        secs.append(Section(f"Incident: {r['title']}", html, claim))
        f.append(claim)
    sub = "Seed section 16, every incident run now; each postmortem's figures are read off the simulated timeline (postmortems/*.md beside this report)."
    return render_page(f"Lab 16: {TITLE}", secs, findings=f, subtitle=sub)
