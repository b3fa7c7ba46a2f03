"""A small PromQL subset as an expression tree that both renders to PromQL text and evaluates over
gpuinfra's telemetry, with Prometheus 2.x semantics where they matter:

- an instant selector returns, per series, the latest sample at or before t within the 5-minute
  lookback (so a series that stops reporting is still seen for 5 minutes);
- range selectors ``[w]`` take the samples in [t - w, t] (Prometheus 2.x: closed on both ends);
- comparison operators filter and keep the left value; aggregations keep only their ``by``
  labels; binary operators match one-to-one on all labels, or on the ``on(...)`` labels, and keep
  the left side's labels; ``and`` / ``unless`` / ``or`` are the set operators.

The same rules are also checked by the real ``promtool test rules`` (gpuinfra.obs.promtool), so
the subset and its semantics are tested against Prometheus itself.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

import numpy as np

LOOKBACK_S = 300.0
Labels = tuple[tuple[str, str], ...]
Vector = dict[Labels, float]
CMP = {">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne}
ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


class Ctx:
    """Telemetry plus per-series caches (last valid sample index at each time)."""

    def __init__(self, tel):
        self.tel = tel
        self.times = tel.times
        self._last: dict[tuple[str, Labels], np.ndarray] = {}

    def last_valid(self, metric: str, labels: Labels, vals: np.ndarray) -> np.ndarray:
        key = (metric, labels)
        lv = self._last.get(key)
        if lv is None:
            idx = np.where(~np.isnan(vals), np.arange(len(vals)), -1)
            lv = self._last[key] = np.maximum.accumulate(idx)
        return lv


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


class Expr:
    def render(self) -> str:
        raise NotImplementedError

    def eval(self, ctx: Ctx, t: float) -> Vector:
        raise NotImplementedError


@dataclass(frozen=True)
class Sel(Expr):
    metric: str
    eq: tuple[tuple[str, str], ...] = ()
    ne: tuple[tuple[str, str], ...] = ()
    rx: tuple[tuple[str, str], ...] = ()
    """label=~"regex" matchers (fully anchored, as Prometheus anchors them)."""

    def render(self) -> str:
        ms = [f'{k}="{v}"' for k, v in self.eq] + [f'{k}!="{v}"' for k, v in self.ne]
        ms += [f'{k}=~"{v}"' for k, v in self.rx]
        return self.metric + ("{" + ",".join(ms) + "}" if ms else "")

    def _match(self, labels: Labels) -> bool:
        d = dict(labels)
        return (
            all(d.get(k, "") == v for k, v in self.eq)
            and all(d.get(k, "") != v for k, v in self.ne)
            and all(re.fullmatch(v, d.get(k, "")) is not None for k, v in self.rx)
        )

    def series(self, ctx: Ctx):
        for labels, vals in ctx.tel.series.get(self.metric, {}).items():
            if self._match(labels):
                yield labels, vals

    def eval(self, ctx: Ctx, t: float) -> Vector:
        k = int(np.searchsorted(ctx.times, t, side="right")) - 1
        out: Vector = {}
        if k < 0:
            return out
        for labels, vals in self.series(ctx):
            j = int(ctx.last_valid(self.metric, labels, vals)[k])
            if j >= 0 and ctx.times[j] >= t - LOOKBACK_S:
                out[tuple((a, b) for a, b in labels if b != "")] = float(vals[j])
        return out


@dataclass(frozen=True)
class Range(Expr):
    fn: str
    """changes or max_over_time"""
    sel: Sel
    window_s: float

    def render(self) -> str:
        return f"{self.fn}({self.sel.render()}[{int(self.window_s // 60)}m])"

    def eval(self, ctx: Ctx, t: float) -> Vector:
        lo = int(np.searchsorted(ctx.times, t - self.window_s, side="left"))
        hi = int(np.searchsorted(ctx.times, t, side="right"))
        out: Vector = {}
        for labels, vals in self.sel.series(ctx):
            w = vals[lo:hi]
            w = w[~np.isnan(w)]
            if len(w) == 0:
                continue
            key = tuple((a, b) for a, b in labels if b != "")
            out[key] = float(np.count_nonzero(np.diff(w) != 0)) if self.fn == "changes" else float(w.max())
        return out


@dataclass(frozen=True)
class Agg(Expr):
    op: str
    by: tuple[str, ...]
    expr: Expr

    def render(self) -> str:
        return f"{self.op} by ({', '.join(self.by)}) ({self.expr.render()})"

    def eval(self, ctx: Ctx, t: float) -> Vector:
        groups: dict[Labels, list[float]] = {}
        for labels, v in self.expr.eval(ctx, t).items():
            d = dict(labels)
            key = tuple((k, d[k]) for k in sorted(self.by) if d.get(k, "") != "")
            groups.setdefault(key, []).append(v)
        f = {"max": max, "min": min, "sum": sum, "avg": lambda xs: sum(xs) / len(xs), "count": len}[self.op]
        return {k: float(f(vs)) for k, vs in groups.items()}


@dataclass(frozen=True)
class Cmp(Expr):
    expr: Expr
    op: str
    value: float

    def render(self) -> str:
        inner = self.expr.render()
        if isinstance(self.expr, Arith | SetOp):
            inner = f"({inner})"
        return f"{inner} {self.op} {_fmt(self.value)}"

    def eval(self, ctx: Ctx, t: float) -> Vector:
        f = CMP[self.op]
        return {k: v for k, v in self.expr.eval(ctx, t).items() if f(v, self.value)}


def _key(labels: Labels, on: tuple[str, ...] | None) -> Labels:
    if on is None:
        return labels
    d = dict(labels)
    return tuple((k, d.get(k, "")) for k in sorted(on))


@dataclass(frozen=True)
class Arith(Expr):
    a: Expr
    op: str
    b: Expr
    on: tuple[str, ...] | None = None

    def render(self) -> str:
        mod = f" on({', '.join(self.on)})" if self.on is not None else ""
        return f"{self.a.render()} {self.op}{mod} ({self.b.render()})"

    def eval(self, ctx: Ctx, t: float) -> Vector:
        right = {_key(k, self.on): v for k, v in self.b.eval(ctx, t).items()}
        f = ARITH[self.op]
        out: Vector = {}
        for k, v in self.a.eval(ctx, t).items():
            r = right.get(_key(k, self.on))
            if r is None or (self.op == "/" and r == 0):
                continue
            out[k] = float(f(v, r))
        return out


@dataclass(frozen=True)
class SetOp(Expr):
    a: Expr
    op: str
    """and, unless, or"""
    b: Expr
    on: tuple[str, ...] | None = None

    def render(self) -> str:
        mod = f" on({', '.join(self.on)})" if self.on is not None else ""
        return f"{self.a.render()} {self.op}{mod} {self.b.render()}"

    def eval(self, ctx: Ctx, t: float) -> Vector:
        left = self.a.eval(ctx, t)
        right = self.b.eval(ctx, t)
        rk = {_key(k, self.on) for k in right}
        if self.op == "and":
            return {k: v for k, v in left.items() if _key(k, self.on) in rk}
        if self.op == "unless":
            return {k: v for k, v in left.items() if _key(k, self.on) not in rk}
        lk = {_key(k, self.on) for k in left}
        out = dict(left)
        out.update({k: v for k, v in right.items() if _key(k, self.on) not in lk})
        return out


@dataclass(frozen=True)
class Paren(Expr):
    """Parentheses in the rendered PromQL (``and`` binds tighter than ``or``)."""

    expr: Expr

    def render(self) -> str:
        return f"({self.expr.render()})"

    def eval(self, ctx: Ctx, t: float) -> Vector:
        return self.expr.eval(ctx, t)
