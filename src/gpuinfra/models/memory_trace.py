"""Allocation traces for the caching-allocator model: a small text format, a runner that
records the allocator's state after every operation, and the built-in scenarios that show why
free VRAM does not mean a new workload can start.

Trace format (one operation per line, ``#`` starts a comment, sizes in binary units)::

    gpu A100-40GB                 # a catalog GPU (its visible memory) or a size: gpu 16GiB
    config expandable_segments:True,max_split_size_mb:128   # PYTORCH_CUDA_ALLOC_CONF
    fraction 0.5                  # torch.cuda.set_per_process_memory_fraction
    context 500MiB                # this process's CUDA context (non-PyTorch memory)
    other 4242 30GiB              # a process outside the simulation holding memory
    alloc x 5MiB                  # x = torch.empty(5 MiB) in process 'main'
    alloc y 1GiB proc=B           # in another simulated process (created on first use)
    free x
    empty_cache proc=B

Header lines (gpu, config, fraction, context, other) come before the first operation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gpuinfra.catalog.gpus import gpu_model
from gpuinfra.errors import UserError
from gpuinfra.models.memory import (
    DEFAULT_CONTEXT_BYTES,
    AllocatorConfig,
    CachingAllocator,
    GiB,
    Gpu,
    MiB,
    OutOfMemoryError,
    parse_bytes,
)


@dataclass
class Op:
    line: int
    kind: str
    """alloc, free or empty_cache"""
    name: str = ""
    size: int = 0
    proc: str = "main"


@dataclass
class Trace:
    label: str
    total: int
    gpu_name: str
    ops: list[Op]
    config: str = ""
    fraction: float = 1.0
    context: int = DEFAULT_CONTEXT_BYTES
    others: dict[int, int] = field(default_factory=dict)

    def with_config(self, config: str) -> Trace:
        return Trace(self.label, self.total, self.gpu_name, self.ops, config, self.fraction, self.context, self.others)


def gpu_total(spec: str, where: str) -> tuple[int, str]:
    """The memory CUDA reports as total (cudaMemGetInfo, the 'total capacity' of PyTorch's OOM
    message) for a catalog model, or a size. Where the catalog has no CUDA figure for the model,
    nvidia-smi's total stands in (an assumption: it is about 0.5 GiB higher on H100, 79.65 vs
    79.18 GiB), then the nominal size."""
    if spec[:1].isdigit():
        total = parse_bytes(spec, where)
        if total <= 0:  # an explicit 0 is a wrong value, not a missing gpu line
            raise UserError(
                f"GPU memory '{spec}' is out of range",
                where=where,
                expected="a size above 0 (e.g. gpu 80GiB) or a catalog model (e.g. gpu A100-40GB)",
            )
        return total, spec
    m = gpu_model(spec, where=where)
    if m.cuda_total_mib:
        return m.cuda_total_mib * MiB, m.name
    if m.memory_visible_mib:
        return m.memory_visible_mib * MiB, m.name
    if m.memory_gib:
        return int(m.memory_gib * GiB), m.name
    raise UserError(f"{m.name} has no memory size in the catalog", where=where)


MAX_TRACE_OPS = 100_000
"""Operations a trace may hold: the allocator model runs about 10^5 operations a second when few
blocks are live, and best fit slows as live blocks grow (docs/benchmarks.md); a longer trace is
refused up front rather than run for minutes."""


def parse_trace(text: str, label: str) -> Trace:
    total, gname = 0, ""
    config, fraction, context = "", 1.0, DEFAULT_CONTEXT_BYTES
    others: dict[int, int] = {}
    ops: list[Op] = []
    lines = text.splitlines()
    if len(lines) > MAX_TRACE_OPS + 1000:
        raise UserError(
            f"the trace has {len(lines):,} lines",
            where=label,
            expected=f"at most {MAX_TRACE_OPS:,} operations",
            fix="cut the trace to the window around the failure (the allocator state before it is what matters)",
        )
    for n, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{label}:{n}"
        parts = line.split()
        kw = {k: v for k, _, v in (p.partition("=") for p in parts if "=" in p)}
        args = [p for p in parts if "=" not in p]
        unknown = sorted(set(kw) - {"proc"})
        if not args or unknown or not kw.get("proc", "main"):
            raise UserError(
                f"cannot read '{line}'" + (f": unknown option {unknown[0]}=" if unknown else ""),
                where=where,
                expected="a command first (gpu, config, fraction, context, other, alloc, free, empty_cache), "
                "then its arguments and optionally proc=NAME",
            )
        cmd = args[0].lower()
        proc = kw.get("proc", "main")
        try:
            if cmd in ("gpu", "config", "fraction", "context", "other") and ops:
                raise UserError(
                    f"'{cmd}' after the first operation",
                    where=where,
                    expected="header lines (gpu, config, fraction, context, other) first",
                )
            if cmd == "gpu" and len(args) == 2:
                total, gname = gpu_total(args[1], where)
            elif cmd == "config" and len(args) == 2:
                AllocatorConfig.parse(args[1])  # validate now, with the line number
                config = args[1]
            elif cmd == "fraction" and len(args) == 2:
                fraction = float(args[1])
                if not 0 < fraction <= 1:  # also refuses nan
                    raise UserError(f"fraction {args[1]}", where=where, expected="a number in (0, 1]")
            elif cmd == "context" and len(args) == 2:
                context = parse_bytes(args[1], where)
            elif cmd == "other" and len(args) == 3:
                pid = int(args[1])
                if pid < 0:
                    raise ValueError(pid)
                others[pid] = parse_bytes(args[2], where)
            elif cmd == "alloc" and len(args) == 3:
                ops.append(Op(n, "alloc", args[1], parse_bytes(args[2], where), proc))
            elif cmd == "free" and len(args) == 2:
                ops.append(Op(n, "free", args[1], 0, proc))
            elif cmd == "empty_cache" and len(args) == 1:
                ops.append(Op(n, "empty_cache", "", 0, proc))
            else:
                raise UserError(
                    f"cannot read '{line}'",
                    where=where,
                    expected="gpu MODEL|SIZE, config CONF, fraction F, context SIZE, other PID SIZE, alloc NAME SIZE, free NAME or empty_cache (each optionally proc=NAME)",
                )
        except ValueError:
            raise UserError(f"bad number in '{line}'", where=where) from None
        except UserError as e:
            if e.where is None or not e.where.startswith(label):
                e = UserError(
                    e.what, where=f"{where} ({e.where})" if e.where else where, expected=e.expected, fix=e.fix
                )
            raise e from None
    if not total:
        raise UserError(
            "no 'gpu' line", where=label, expected="gpu MODEL (e.g. gpu A100-40GB) or gpu SIZE before the operations"
        )
    try:
        AllocatorConfig.parse(config, fraction)
    except UserError as e:
        raise UserError(e.what, where=f"{label} (fraction)", expected=e.expected) from None
    return Trace(label, total, gname, ops, config, fraction, context, others)


def read_trace(path: Path) -> Trace:
    from gpuinfra.textfile import read_text

    return parse_trace(read_text(path), str(path))


@dataclass
class RunResult:
    trace: Trace
    config: str
    rows: list[dict]
    oom: dict | None
    snapshot: list[dict]
    stats: dict[str, int]
    snapshots: dict[str, list[dict]] = field(default_factory=dict)
    ooms: list[dict] = field(default_factory=list)

    @property
    def completed(self) -> bool:
        return self.oom is None


def run_trace(trace: Trace, config: str | None = None) -> RunResult:
    """Replay the trace; one row of allocator state per operation. An OOM ends the process that
    raised it, as an uncaught torch.OutOfMemoryError does: its later operations are skipped and
    its memory goes back to the device. Other processes go on."""
    conf = AllocatorConfig.parse(trace.config if config is None else config, trace.fraction)
    gpu = Gpu(trace.total, trace.others)
    procs: dict[str, CachingAllocator] = {}
    pids = {"main": 1000}

    def proc(name: str) -> CachingAllocator:
        if name not in procs:
            pid = pids.setdefault(name, 1000 + len(pids))
            procs[name] = CachingAllocator(gpu, conf, pid=pid, context_bytes=trace.context)
        return procs[name]

    proc("main")
    rows: list[dict] = []
    oom = None
    ooms: list[dict] = []
    final: dict[str, tuple] = {}
    dead: set[str] = set()
    for i, op in enumerate(trace.ops):
        if op.proc in dead:
            continue
        a = proc(op.proc)
        ok, msg = True, ""
        try:
            if op.kind == "alloc":
                a.malloc(op.size, op.name)
            elif op.kind == "free":
                a.free(op.name)
            else:
                a.empty_cache()
        except OutOfMemoryError as e:
            ok, msg = False, str(e)
        except UserError as e:
            raise UserError(e.what, where=f"{trace.label}:{op.line}", expected=e.expected) from None
        st = a.memory_stats()
        rows.append(
            {
                "step": i,
                "line": op.line,
                "proc": op.proc,
                "op": op.kind,
                "name": op.name,
                "size": op.size,
                "ok": ok,
                "allocated": st["allocated_bytes.all.current"],
                "reserved": st["reserved_bytes.all.current"],
                "inactive_split": st["inactive_split_bytes.all.current"],
                "largest_free_block": a.largest_free_block(),
                "device_free": gpu.free(),
                "device_used": gpu.used(),
                "segments": st["segment.all.current"],
            }
        )
        if not ok:
            event = {
                "step": i,
                "line": op.line,
                "proc": op.proc,
                "name": op.name,
                "size": op.size,
                "message": msg,
                "device_free": gpu.free(),
                "allocated": a.allocated,
                "cached_free": a.reserved - a.allocated,
                "largest_free_block": a.largest_free_block(),
            }
            ooms.append(event)
            oom = oom or event
            dead.add(op.proc)
            final[op.proc] = (a.snapshot(), a.memory_stats())
            gpu.processes.remove(a)  # the process exits; the driver takes its memory back
    for n, p in procs.items():
        final.setdefault(n, (p.snapshot(), p.memory_stats()))
    snap, stats = final["main"]
    return RunResult(trace, conf_text(conf), rows, oom, snap, stats, {n: v[0] for n, v in final.items()}, ooms)


def conf_text(c: AllocatorConfig) -> str:
    parts = []
    if c.expandable_segments:
        parts.append("expandable_segments:True")
    if c.max_split_size != float("inf"):
        parts.append(f"max_split_size_mb:{c.max_split_size // MiB}")
    if c.garbage_collection_threshold:
        parts.append(f"garbage_collection_threshold:{c.garbage_collection_threshold}")
    if c.roundup_power2_divisions:
        parts.append(f"roundup_power2_divisions:{c.roundup_power2_divisions}")
    return ",".join(parts) or "(defaults)"


# -- built-in scenarios ------------------------------------------------------------------------


def _variable_batch() -> str:
    """Training with variable-length batches (activations sized by sequence length) that also
    keeps a few tensors alive across steps (metrics appended to a list without .item(), the
    PyTorch FAQ's "accumulating history"). Blocks cut for one length are split for the next,
    the kept tensors land inside them and pin them; at the end an 8 GiB evaluation buffer does
    not fit although the device holds far more than 8 GiB that is not allocated."""
    lines = ["# weights and optimizer state stay; activations come and go per batch", "gpu A100-40GB"]
    lines += [f"alloc w{k} 1GiB" for k in range(28)]
    lengths = [4096, 512, 3584, 1024, 3072, 768, 2560, 1536, 2048, 1280]  # tokens per batch
    for b, n_tok in enumerate(lengths):
        per = n_tok * 96 * 1024  # one layer's saved activations: 96 KiB per token
        for layer in range(24):
            lines.append(f"alloc a{b}_{layer} {per}")
            if layer % 4 == 3:
                lines.append(f"alloc hist{b}_{layer} 16MiB  # kept across steps")
        lines += [f"free a{b}_{layer}" for layer in reversed(range(24))]
    lines.append("alloc eval 8GiB  # an evaluation buffer after training")
    return "\n".join(lines) + "\n"


def _interleaved() -> str:
    """Two tensor kinds allocated in turn, one kind freed: holes everywhere, no hole big enough.
    Each pair of 8 MiB tensors shares a 20 MiB segment (requests of 1-10 MiB get 20 MiB segments);
    freeing one of each pair leaves 12 MiB holes that a 24 MiB request cannot use."""
    lines = ["# a T4 whose memory is nearly all taken by the model", "gpu T4", "alloc weights 12992MiB"]
    for i in range(80):
        lines += [f"alloc keep{i} 8MiB", f"alloc tmp{i} 8MiB"]
    lines += [f"free tmp{i}" for i in range(80)]
    lines.append("alloc wide 24MiB  # 960 MiB are cached and free, in 12 MiB holes")
    return "\n".join(lines) + "\n"


def _second_process() -> str:
    return (
        "\n".join(
            [
                "# an inference server already holds most of an H100; a training job starts beside it",
                "gpu H100-SXM",
                "other 4242 60GiB",
                "alloc weights 14GiB",
                "alloc grads 7GiB",
                "alloc adam 8GiB",
            ]
        )
        + "\n"
    )


def _cached_not_free() -> str:
    lines = ["# process A finished its big step: its tensors are freed but the cache keeps the memory", "gpu A100-80GB"]
    lines += [f"alloc act{i} 2GiB" for i in range(30)]
    lines += [f"free act{i}" for i in range(30)]
    lines += [
        "alloc model 20GiB proc=B  # a second job: nvidia-smi shows A holding 60 GiB though A has 0 allocated",
        "empty_cache  # A releases its cache",
        "alloc model 20GiB proc=B2  # the second job, restarted",
    ]
    return "\n".join(lines) + "\n"


SCENARIOS = {
    "variable-batch": (
        _variable_batch,
        "fragmentation after variable-length batches: reserved grows past what is allocated",
    ),
    "interleaved": (_interleaved, "interleaved allocation sizes: free memory in holes no request fits"),
    "second-process": (
        _second_process,
        "a second process on the same GPU: the device is full though this process allocated little",
    ),
    "cached-not-free": (
        _cached_not_free,
        "cached-but-unused memory: freed tensors still hold VRAM until empty_cache()",
    ),
}


def scenario(name: str) -> Trace:
    if name not in SCENARIOS:
        from gpuinfra.errors import did_you_mean

        raise UserError(
            f"unknown memory scenario '{name}'", expected=", ".join(SCENARIOS), fix=did_you_mean(name, SCENARIOS)
        )
    return parse_trace(SCENARIOS[name][0](), f"scenario:{name}")
