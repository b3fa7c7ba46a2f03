"""Cluster state: node pools of node shapes, nodes, and devices with an identity (node, index).

The hot state is a handful of numpy arrays (free CPU, memory, per-device free milli-GPU) that
the scheduler's filters read whole. Every change goes through :meth:`ClusterState.allocate` and
:meth:`ClusterState.release`, which check that no device, CPU or memory is ever over-committed
and keep the running totals the recorder integrates over time.

Milli-GPU follows the Alibaba trace: a device has 1000 milli; a sharing pod asks for < 1000 of
one device, a whole-GPU pod for 1000 of each of its devices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MILLI_PER_GPU = 1000


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str = ""
    effect: str = "NoSchedule"  # NoSchedule | PreferNoSchedule | NoExecute, as Kubernetes names them


@dataclass(frozen=True, slots=True)
class NodePool:
    name: str
    gpu_model: str | None
    gpus_per_node: int
    cpu_milli: int
    memory_mib: int
    count: int
    labels: tuple[tuple[str, str], ...] = ()
    taints: tuple[Taint, ...] = ()
    shape: str | None = None
    node_names: tuple[str, ...] | None = None
    """Explicit node names (from a trace's node list); default ``{pool}-{i:04d}``."""
    mig_layout: tuple[str, ...] = ()
    """MIG instances on every GPU of the pool (mig-parted ``devices: all``); empty: MIG disabled."""
    timeslice_replicas: int = 0
    """k8s-device-plugin time-slicing: each GPU advertised as this many ``nvidia.com/gpu``
    replicas (0: off). A 1-GPU pod there takes one replica, i.e. 1000 // replicas milli of the
    GPU's time; requests above 1 are refused (failRequestsGreaterThanOne: true)."""


@dataclass(frozen=True, slots=True)
class Device:
    """A GPU with an identity. Later layers hang memory, MIG slices, health and topology on it."""

    node: str
    index: int
    model: str
    uid: int
    """Dense id: node_idx * max_gpus_per_node + index."""


@dataclass(frozen=True, slots=True)
class Allocation:
    pod: int
    node: int
    devices: tuple[int, ...]
    milli_per_device: int
    cpu_milli: int
    memory_mib: int

    @property
    def gpu_milli_total(self) -> int:
        return self.milli_per_device * len(self.devices)


class OverCommitError(AssertionError):
    """A bug: something tried to give out more than a node or device has."""


@dataclass
class ClusterState:
    """Nodes and devices of a cluster and what is allocated on them: the only place GPUs are held.

    Arrays are per node (``n_nodes``) or per node x device slot (``[n_nodes, max_gpus]``):
    ``cpu_free``/``mem_free`` (milli-CPU, MiB), ``dev_free`` (free milli-GPU per device, -1 for no
    device or an unavailable one), ``dev_available``, ``node_up``. Build with :meth:`from_pools`.
    Mutate only through :meth:`allocate`, :meth:`release`, :meth:`set_device_available` and
    :meth:`set_node_up`: they raise :class:`OverCommitError` (a bug) the moment anything would
    be given out twice, and keep the running totals (``alloc_milli``, ``unavail_milli`` per GPU
    model) that the recorder integrates and ``sim/invariants.py`` checks.
    """

    pools: tuple[NodePool, ...]
    models: tuple[str, ...]
    """GPU model names present; ``node_model`` indexes into this (-1 = no GPUs)."""
    node_names: list[str]
    node_pool: np.ndarray
    node_model: np.ndarray
    cpu_cap: np.ndarray
    mem_cap: np.ndarray
    gpu_count: np.ndarray
    cpu_free: np.ndarray = field(init=False)
    mem_free: np.ndarray = field(init=False)
    dev_free: np.ndarray = field(init=False)
    """[nodes, max_gpus] free milli per device; -1 for a slot with no device or an unavailable one."""
    dev_exists: np.ndarray = field(init=False)
    dev_available: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.node_names)
        g = int(self.gpu_count.max()) if n else 0
        self.max_gpus = max(g, 1)
        self.cpu_free = self.cpu_cap.astype(np.int64).copy()
        self.mem_free = self.mem_cap.astype(np.int64).copy()
        slots = np.arange(self.max_gpus)[None, :]
        self.dev_exists = slots < self.gpu_count[:, None]
        self.dev_available = self.dev_exists.copy()
        self.dev_free = np.where(self.dev_exists, MILLI_PER_GPU, -1).astype(np.int32)
        self.dev_free_desc = -np.sort(-self.dev_free, axis=1)
        self.desc_key: list[tuple[int, ...]] = [tuple(r) for r in self.dev_free_desc.tolist()]
        """Each node's ``dev_free_desc`` row as a tuple of ints (kept in step; a hashable key)."""
        self._model_of: list[int] = self.node_model.tolist()
        self._pool_of: list[int] = self.node_pool.tolist()
        self._cpu_cap: list[int] = self.cpu_cap.tolist()
        self._mem_cap: list[int] = self.mem_cap.tolist()
        self.node_gpu_free = np.where(self.dev_free > 0, self.dev_free, 0).sum(axis=1).astype(np.int64)
        """Free milli over each node's available devices (kept up to date; scores read it whole)."""
        self.node_gpu_cap = self.dev_available.sum(axis=1).astype(np.int64) * MILLI_PER_GPU
        self.node_up = np.ones(n, dtype=bool)
        """False while a node is down (rebooting): it takes no pods, not even CPU-only ones."""
        self._node_holds: dict[int, dict[str, int]] = {}
        """node -> {owner: holds} for nodes held down (:meth:`set_node_up`)."""
        self._dev_holds: dict[tuple[int, int], dict[str, int]] = {}
        """(node, device) -> {owner: holds} for devices held out of service."""
        """Each node's free milli per device, sorted descending: a node can give k devices of m
        milli each iff ``dev_free_desc[n, k-1] >= m`` (one column compare instead of a count)."""
        self.node_index = {name: i for i, name in enumerate(self.node_names)}
        nm = len(self.models)
        # Running totals per GPU model (milli): what the recorder integrates.
        self.capacity_milli = np.zeros(nm, dtype=np.int64)
        for m in range(nm):
            self.capacity_milli[m] = int(self.gpu_count[self.node_model == m].sum()) * MILLI_PER_GPU
        self.alloc_milli = np.zeros(nm, dtype=np.int64)
        self.unavail_milli = np.zeros(nm, dtype=np.int64)
        self.busy_devices = np.zeros(nm, dtype=np.int64)
        """Devices with any allocation (the whole-GPU view of a shared GPU)."""
        self.node_allocs: list[dict[int, Allocation]] = [{} for _ in range(n)]
        """The allocations on each node, by pod (for policies that look at co-located pods, and preemption)."""
        self.changes: list[int] = []
        """Append-only log of nodes whose state changed; readers keep their own position in it."""
        self.mig_gpu_layout: dict[tuple[int, int], tuple[str, ...]] = {}
        """MIG instances of GPUs the MIG manager repartitioned away from their pool's layout."""
        r = np.array([self.pools[self.node_pool[i]].timeslice_replicas for i in range(n)], dtype=np.int64)
        self.replica_milli = np.where(r > 0, MILLI_PER_GPU // np.maximum(r, 1), 0) if n else r
        """Per node: the milli one time-slice replica holds (0 where time-slicing is off)."""
        self.peak_device_used_milli = 0
        self.peak_cpu_ratio = 0.0
        self.peak_mem_ratio = 0.0
        self.version = 0
        self.state_key: list[tuple] = [self._key_of(i) for i in range(n)]
        """Each node's equivalence-class key (sim/equivalence.py), kept in step with every change:
        (pool, free milli-CPU, free memory MiB, up, ``desc_key``)."""

    def _key_of(self, n: int) -> tuple:
        return (self._pool_of[n], int(self.cpu_free[n]), int(self.mem_free[n]), bool(self.node_up[n]), self.desc_key[n])

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_pools(cls, pools: list[NodePool] | tuple[NodePool, ...]) -> ClusterState:
        models: list[str] = []
        for p in pools:
            if p.gpu_model and p.gpus_per_node > 0 and p.gpu_model not in models:
                models.append(p.gpu_model)
        names: list[str] = []
        pool_idx, model_idx, cpu, mem, gpus = [], [], [], [], []
        for pi, p in enumerate(pools):
            pnames = p.node_names or tuple(f"{p.name}-{i:04d}" for i in range(p.count))
            if len(pnames) != p.count:
                raise ValueError(f"pool {p.name}: {len(pnames)} names for {p.count} nodes")
            names.extend(pnames)
            pool_idx += [pi] * p.count
            mid = models.index(p.gpu_model) if (p.gpu_model and p.gpus_per_node > 0) else -1
            model_idx += [mid] * p.count
            cpu += [p.cpu_milli] * p.count
            mem += [p.memory_mib] * p.count
            gpus += [p.gpus_per_node] * p.count
        if len(set(names)) != len(names):
            raise ValueError("duplicate node names in cluster")
        return cls(
            pools=tuple(pools),
            models=tuple(models),
            node_names=names,
            node_pool=np.asarray(pool_idx, dtype=np.int32),
            node_model=np.asarray(model_idx, dtype=np.int32),
            cpu_cap=np.asarray(cpu, dtype=np.int64),
            mem_cap=np.asarray(mem, dtype=np.int64),
            gpu_count=np.asarray(gpus, dtype=np.int32),
        )

    # -- queries -----------------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return len(self.node_names)

    @property
    def n_gpus(self) -> int:
        return int(self.gpu_count.sum())

    def devices(self, node: int | None = None) -> list[Device]:
        nodes = range(self.n_nodes) if node is None else [node]
        out = []
        for n in nodes:
            model = self.models[self.node_model[n]] if self.node_model[n] >= 0 else ""
            for i in range(int(self.gpu_count[n])):
                out.append(Device(self.node_names[n], i, model, n * self.max_gpus + i))
        return out

    def node_labels(self, node: int) -> dict[str, str]:
        return dict(self.pools[self.node_pool[node]].labels)

    def node_taints(self, node: int) -> tuple[Taint, ...]:
        return self.pools[self.node_pool[node]].taints

    def nodes_changed_since(self, pos: int) -> tuple[list[int], int]:
        """Nodes changed since position ``pos`` of the change log (each once, in order), and the new position."""
        log = self.changes
        if pos == len(log):
            return [], pos
        return list(dict.fromkeys(log[pos:])), len(log)

    # -- mutation ----------------------------------------------------------------------------
    def allocate(self, a: Allocation) -> None:
        # NOTE: speed only: the checks and updates run on Python ints of the node's row (one
        # ``tolist`` and one row write-back) instead of numpy scalar operations per device.
        n = a.node
        key = self.state_key[n]  # (pool, free CPU, free memory, up, desc_key): Python ints
        cpu_free = key[1] - a.cpu_milli
        mem_free = key[2] - a.memory_mib
        if cpu_free < 0 or mem_free < 0:
            raise OverCommitError(f"node {self.node_names[n]}: cpu/mem over-commit by pod {a.pod}")
        devs = a.devices
        if devs:
            milli = a.milli_per_device
            row = self.dev_free[n].tolist()
            for d in devs:
                # an unavailable (or absent) device holds -1
                if row[d] < 0 or row[d] < milli:
                    raise OverCommitError(f"device {self.node_names[n]}/{d}: over-commit by pod {a.pod}")
            m = self._model_of[n]
            busy = 0
            peak = self.peak_device_used_milli
            for d in devs:
                v = row[d]
                if v == MILLI_PER_GPU and milli > 0:
                    busy += 1
                v -= milli
                row[d] = v
                if MILLI_PER_GPU - v > peak:
                    peak = MILLI_PER_GPU - v
            self.peak_device_used_milli = peak
            drow = self.dev_free[n]
            for d in devs:
                drow[d] = row[d]
            desc = sorted(row, reverse=True)
            self.dev_free_desc[n] = desc
            self.desc_key[n] = tuple(desc)
            total = milli * len(devs)
            if busy:
                self.busy_devices[m] += busy
            self.alloc_milli[m] += total
            self.node_gpu_free[n] -= total
        self.cpu_free[n] = cpu_free
        self.mem_free[n] = mem_free
        self.state_key[n] = (key[0], cpu_free, mem_free, key[3], self.desc_key[n])
        self.node_allocs[n][a.pod] = a
        self.changes.append(n)
        cpu_cap, mem_cap = self._cpu_cap[n], self._mem_cap[n]
        cr = 1.0 - cpu_free / cpu_cap if cpu_cap else 0.0
        mr = 1.0 - mem_free / mem_cap if mem_cap else 0.0
        if cr > self.peak_cpu_ratio:
            self.peak_cpu_ratio = cr
        if mr > self.peak_mem_ratio:
            self.peak_mem_ratio = mr
        self.version += 1

    def release(self, a: Allocation) -> None:
        n = a.node
        devs = a.devices
        if devs:
            milli = a.milli_per_device
            row = self.dev_free[n].tolist()
            m = self._model_of[n]
            busy = 0
            for d in devs:
                v = row[d] + milli
                if v > MILLI_PER_GPU:
                    raise OverCommitError(f"device {self.node_names[n]}/{d}: released more than allocated")
                row[d] = v
                if v == MILLI_PER_GPU and milli > 0:
                    busy += 1
        key = self.state_key[n]
        cpu_free = key[1] + a.cpu_milli
        mem_free = key[2] + a.memory_mib
        if cpu_free > self._cpu_cap[n] or mem_free > self._mem_cap[n]:
            raise OverCommitError(f"node {self.node_names[n]}: released more cpu/mem than allocated")
        if devs:
            drow = self.dev_free[n]
            for d in devs:
                drow[d] = row[d]
            desc = sorted(row, reverse=True)
            self.dev_free_desc[n] = desc
            self.desc_key[n] = tuple(desc)
            total = milli * len(devs)
            if busy:
                self.busy_devices[m] -= busy
            self.alloc_milli[m] -= total
            self.node_gpu_free[n] += total
        self.cpu_free[n] = cpu_free
        self.mem_free[n] = mem_free
        self.state_key[n] = (key[0], cpu_free, mem_free, key[3], self.desc_key[n])
        self.node_allocs[n].pop(a.pod, None)
        self.changes.append(n)
        self.version += 1

    @staticmethod
    def _hold(holds: dict, key, owner: str, take: bool, what: str) -> bool:
        """Count ``owner``'s hold on ``key`` up (take) or down; True when the thing changes state
        (its first hold taken, or its last one released)."""
        per = holds.get(key)
        if take:
            if per is None:
                per = holds[key] = {}
            per[owner] = per.get(owner, 0) + 1
            return len(per) == 1 and per[owner] == 1
        if per is None or per.get(owner, 0) <= 0:
            raise OverCommitError(f"{what}: released by {owner or 'an unnamed owner'!r}, which holds it down nowhere")
        if per[owner] == 1:
            del per[owner]
        else:
            per[owner] -= 1
        if per:
            return False
        del holds[key]
        return True

    def down_owners(self, node: int, index: int | None = None) -> dict[str, int]:
        """Who holds a node down (``index`` None) or a device out of service, and how many times:
        {owner: holds}; empty while it is up / in service."""
        holds = self._node_holds.get(node) if index is None else self._dev_holds.get((node, index))
        return dict(holds or {})

    def set_node_up(self, node: int, up: bool, owner: str = "") -> None:
        """Hold a node down for ``owner`` (cordoned, rebooting, reclaimed: it takes no pods, not even
        CPU-only ones), or release one hold of that owner.

        Holds are counted per owner (subsystem), and a node is up exactly when nobody holds it
        down: a reboot that ends while an upgrade still has the node cordoned leaves it cordoned.
        Each ``up=False`` must be paired with one ``up=True`` of the same owner.

        Raises:
            OverCommitError: a release by an owner that holds the node down nowhere (a bug).
        """
        if self._hold(self._node_holds, node, owner, not up, f"node {self.node_names[node]}"):
            self.node_up[node] = up
            self.state_key[node] = self._key_of(node)
            self.changes.append(node)
            self.version += 1

    def set_device_available(self, node: int, index: int, available: bool, owner: str = "") -> None:
        """Take a device out of service for ``owner``, or release one hold of that owner; the device
        is in service exactly when nobody holds it out (counted per owner, as :meth:`set_node_up`).
        Only an empty device may leave service; the caller evicts its pods first. A slot with no
        device is ignored.

        Raises:
            OverCommitError: taking out a device with allocations, or a release by an owner that
                holds the device out nowhere (bugs).
        """
        if not self.dev_exists[node, index]:
            return
        if not available and self.dev_available[node, index] and self.dev_free[node, index] != MILLI_PER_GPU:
            raise OverCommitError("a device with allocations cannot be marked unavailable")
        if not self._hold(
            self._dev_holds, (node, index), owner, not available, f"device {self.node_names[node]}/{index}"
        ):
            return
        m = self.node_model[node]
        if not available:
            self.dev_free[node, index] = -1
            self.unavail_milli[m] += MILLI_PER_GPU
        else:
            self.dev_free[node, index] = MILLI_PER_GPU
            self.unavail_milli[m] -= MILLI_PER_GPU
        self.dev_available[node, index] = available
        self.dev_free_desc[node] = -np.sort(-self.dev_free[node])
        self.desc_key[node] = tuple(self.dev_free_desc[node].tolist())
        self.state_key[node] = self._key_of(node)
        self.node_gpu_free[node] = int(np.where(self.dev_free[node] > 0, self.dev_free[node], 0).sum())
        self.node_gpu_cap[node] = int(self.dev_available[node].sum()) * MILLI_PER_GPU
        self.changes.append(node)
        self.version += 1
