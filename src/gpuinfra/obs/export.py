"""Telemetry out: OpenMetrics text with timestamps (for ``promtool tsdb create-blocks-from
openmetrics``), ``promtool test rules`` files generated from a simulation, running promtool, and a
live ``/metrics`` endpoint (prometheus-client) that replays a simulation in real or accelerated
time."""

from __future__ import annotations

import math
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import yaml

from gpuinfra.errors import UserError
from gpuinfra.obs.evaluate import alert_states
from gpuinfra.obs.rules import Rule, rule_file
from gpuinfra.sim.telemetry import Telemetry


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels) -> str:
    return "{" + ",".join(f'{k}="{_esc(v)}"' for k, v in labels if v != "") + "}" if labels else ""


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))


def write_openmetrics(tel: Telemetry, path: Path) -> int:
    """One metric family after another, each series' samples in time order, ``# EOF`` last.
    Counters get the OpenMetrics ``_total`` sample name. Returns the number of samples."""
    n = 0
    ts = tel.start_unix + tel.times
    with open(path, "w") as fh:
        for metric in sorted(tel.series):
            typ = tel.types.get(metric, "gauge")
            family = metric[: -len("_total")] if typ == "counter" and metric.endswith("_total") else metric
            fh.write(f"# TYPE {family} {typ if typ in ('gauge', 'counter') else 'gauge'}\n")
            fh.write(f"# HELP {family} {_esc(tel.helps.get(metric, metric))}\n")
            sample_name = family + "_total" if typ == "counter" else family
            for labels, vals in sorted(tel.series[metric].items()):
                lab = _labels(labels)
                ok = ~np.isnan(vals)
                for t, v in zip(ts[ok], vals[ok]):
                    fh.write(f"{sample_name}{lab} {_num(v)} {t:.3f}\n")
                    n += 1
        fh.write("# EOF\n")
    return n


def promtool() -> str | None:
    return shutil.which("promtool")


def run_promtool(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    exe = promtool()
    if exe is None:
        raise UserError(
            "promtool is not installed", expected="Debian/Ubuntu package 'prometheus' (apt-get install prometheus)"
        )
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)


def _series_notation(vals: np.ndarray) -> str:
    """promtool's input_series values: one per interval, '_' where there is no sample."""
    return " ".join("_" if math.isnan(v) else _num(float(v)) for v in vals)


def promtool_test(
    rules: list[Rule], tel: Telemetry, rule_path: str, eval_every_s: float = 300.0, interval_s: float = 30.0
) -> dict:
    """A ``promtool test rules`` file whose expected alerts are what gpuinfra's own evaluator
    computes for the simulated series (firing alerts at each eval time)."""
    if abs(tel.interval_s - interval_s) > 1e-9:
        raise ValueError("test files assume the rule interval equals the sampling interval")
    input_series = []
    for metric, ss in sorted(tel.series.items()):
        for labels, vals in sorted(ss.items()):
            input_series.append({"series": metric + _labels(labels), "values": _series_notation(vals)})
    wanted = {int(round(t)) for t in np.arange(eval_every_s, tel.times[-1] + 1e-9, eval_every_s)}
    tests = []
    by_rule_time: dict[tuple[int, int], list[dict]] = {}
    for t, k, states in alert_states(rules, tel, interval_s):
        ti = int(round(t))
        if ti not in wanted:
            continue
        firing = [dict(lab) for lab, st in states.items() if st == "firing"]
        by_rule_time[(k, ti)] = firing
    for (k, ti), firing in sorted(by_rule_time.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        r = rules[k]
        tests.append(
            {
                "eval_time": f"{ti}s",
                "alertname": r.name,
                "exp_alerts": [
                    {"exp_labels": {**lab, "severity": r.severity}, "exp_annotations": {"summary": r.summary}}
                    for lab in firing
                ],
            }
        )
    # recording rules that sum or count integers: their values must match Prometheus exactly
    from gpuinfra.obs.promql import Ctx
    from gpuinfra.obs.rules import recording_rules

    ctx = Ctx(tel)
    expr_tests = []
    for name, expr in recording_rules():
        if getattr(expr, "op", "") not in ("sum", "count"):
            continue
        for ti in sorted(wanted)[:: max(len(wanted) // 4, 1)]:
            got = expr.eval(ctx, float(ti))
            if any(not float(v).is_integer() for v in got.values()):
                continue
            samples = [
                {"labels": name + "{" + ",".join(f'{k}="{v}"' for k, v in lab) + "}", "value": float(v)}
                for lab, v in sorted(got.items())
            ]
            expr_tests.append({"expr": name, "eval_time": f"{ti}s", "exp_samples": samples})
    return {
        "rule_files": [rule_path],
        "evaluation_interval": f"{int(interval_s)}s",
        "tests": [
            {
                "interval": f"{int(interval_s)}s",
                "input_series": input_series,
                "alert_rule_test": tests,
                "promql_expr_test": expr_tests,
            }
        ],
    }


def check_with_promtool(rules: list[Rule], tel: Telemetry, workdir: Path, eval_every_s: float = 300.0) -> dict:
    """Write the rule file and a generated test, run ``promtool check rules`` and ``promtool test
    rules``; return their outcomes (agreement = the test passes)."""
    workdir.mkdir(parents=True, exist_ok=True)
    rp = workdir / "rules.yml"
    rp.write_text(rule_file(rules, interval_s=int(tel.interval_s)))
    tp = workdir / "rules_test.yml"
    doc = promtool_test(rules, tel, rp.name, eval_every_s, tel.interval_s)
    tp.write_text(yaml.safe_dump(doc, sort_keys=False, width=100000))
    check = run_promtool("check", "rules", str(rp))
    test = run_promtool("test", "rules", str(tp))
    n_expected = sum(len(x["exp_alerts"]) for x in doc["tests"][0]["alert_rule_test"])
    n_expr = len(doc["tests"][0]["promql_expr_test"])
    return {
        "check_ok": check.returncode == 0,
        "check_output": (check.stdout + check.stderr).strip()[-2000:],
        "test_ok": test.returncode == 0,
        "test_output": (test.stdout + test.stderr).strip()[-4000:],
        "evaluations": len(doc["tests"][0]["alert_rule_test"]),
        "expected_alerts": n_expected,
        "recording_rule_checks": n_expr,
        "series": len(doc["tests"][0]["input_series"]),
    }


# -- live endpoint -------------------------------------------------------------------------------


class TelemetryCollector:
    """A prometheus-client collector that serves the telemetry's values at the simulated 'now'."""

    def __init__(self, tel: Telemetry, speed: float = 1.0):
        self.tel = tel
        self.speed = speed
        self.t0 = time.monotonic()

    def now_index(self) -> int:
        t = (time.monotonic() - self.t0) * self.speed
        return min(int(t // self.tel.interval_s), len(self.tel.times) - 1) if self.tel.interval_s else 0

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        k = self.now_index()
        for metric, ss in sorted(self.tel.series.items()):
            typ = self.tel.types.get(metric, "gauge")
            keys = sorted({a for labels in ss for a, _ in labels})
            name = metric[: -len("_total")] if typ == "counter" and metric.endswith("_total") else metric
            cls = CounterMetricFamily if typ == "counter" else GaugeMetricFamily
            fam = cls(name, self.tel.helps.get(metric, metric), labels=keys)
            for labels, vals in sorted(ss.items()):
                v = vals[k]
                if not math.isnan(v):
                    d = dict(labels)
                    fam.add_metric([d.get(a, "") for a in keys], float(v))
            yield fam


class MetricsServer:
    """Serve ``/metrics`` on ``host:port`` (127.0.0.1 by default) until ``stop()``."""

    def __init__(self, tel: Telemetry, host: str = "127.0.0.1", port: int = 9400, speed: float = 1.0):
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        from prometheus_client import CollectorRegistry
        from prometheus_client.exposition import make_wsgi_app

        class Quiet(WSGIRequestHandler):
            def log_message(self, *a):  # no access log on stderr
                pass

        self.registry = CollectorRegistry()
        self.collector = TelemetryCollector(tel, speed)
        self.registry.register(self.collector)
        self.httpd = make_server(host, port, make_wsgi_app(self.registry), handler_class=Quiet)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> MetricsServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
