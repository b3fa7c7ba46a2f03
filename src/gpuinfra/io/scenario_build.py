"""Building a run from a validated scenario: the cluster, the pods, the scheduler profile and the
price book (:func:`build`).

Errors found here (an unknown GPU model, a plugin name, an impossible pod, a run too large for
this machine) name the scenario file and the line of the field they concern, or the trace row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gpuinfra.analysis.accounting import RunMeta
from gpuinfra.catalog import gpu_hour_price, gpu_model, node_shape
from gpuinfra.errors import UserError
from gpuinfra.io.scenario_load import closest
from gpuinfra.io.scenario_schema import ClusterSpec, GeneratorSpec, PricesSpec, QuotasSpec, Scenario
from gpuinfra.models.cost import PoolPrice, PriceBook
from gpuinfra.sim.cluster import MILLI_PER_GPU, ClusterState, NodePool, Taint
from gpuinfra.sim.framework import Profile
from gpuinfra.sim.kernel import Rngs
from gpuinfra.sim.workload import Pod, PodTable, generate, generate_table, resample


@dataclass
class Built:
    scenario: Scenario
    cluster: ClusterState
    pods: PodTable
    profile: Profile
    prices: PriceBook
    skipped_impossible: list[tuple[str, str]]
    trace_label: str
    seed: int

    def meta(self) -> RunMeta:
        return RunMeta(self.scenario.name, self.seed, self.trace_label, tuple(self.skipped_impossible))


def _product_label(model: str | None) -> str:
    """``nvidia.com/gpu.product`` of a catalog GPU: GFD's label of its sourced NVML name, or the
    catalog name where none is sourced (catalog/data/gpus.csv, ``nvml_name``)."""
    if not model:
        return ""
    from gpuinfra.catalog import gpu_model
    from gpuinfra.io.sharing_export import gfd_product_label

    nvml = gpu_model(model).nvml_name
    return gfd_product_label(nvml) if nvml else model


def _pools(spec: ClusterSpec) -> list[NodePool]:
    if spec.openb:
        from gpuinfra.io.traces import openb_node_list, read_openb_nodes

        pools = read_openb_nodes(openb_node_list(spec.openb))
    else:
        pools = []
        for k, ps in enumerate(spec.pools):
            where = f"cluster.pools[{k}]"
            if ps.shape:
                sh = node_shape(ps.shape, where=f"{where}.shape")
                model, gpus, cpu, mem = sh.gpu_model, sh.gpus, sh.cpu_milli, sh.memory_mib
            else:
                model = gpu_model(ps.gpu_model, where=f"{where}.gpu_model").name if ps.gpu_model else None
                gpus, cpu, mem = ps.gpus_per_node or 0, ps.cpu_milli or 0, ps.memory_mib or 0
            if ps.gpu_model and ps.shape:
                model = gpu_model(ps.gpu_model, where=f"{where}.gpu_model").name
            labels = dict(ps.labels)
            if model and gpus:
                # GPU Feature Discovery's value (the NVML name, blanks to dashes) where the catalog
                # has a sourced NVML name, so a real nodeSelector matches; else the catalog name.
                labels.setdefault("nvidia.com/gpu.product", _product_label(model))
                labels.setdefault("nvidia.com/gpu.count", str(gpus))
            layout: tuple[str, ...] = ()
            if ps.mig_layout:
                from gpuinfra.io.sharing_export import check_layout

                if not model or not gpu_model(model).mig:
                    from gpuinfra.models.mig import mig_gpus

                    raise UserError(
                        f"pool '{ps.name}' has {'GPU ' + model if model else 'no GPU model'}, which has no MIG",
                        where=f"{where}.mig_layout",
                        expected="a MIG-capable gpu_model: " + ", ".join(mig_gpus()),
                        fix=f"set {where}.gpu_model to one of those, or remove {where}.mig_layout",
                    )
                check_layout(model, list(ps.mig_layout), where=f"{where}.mig_layout")
                layout = tuple(ps.mig_layout)
                labels.setdefault("nvidia.com/mig.strategy", "mixed")
                labels.setdefault("nvidia.com/mig.config", "gpuinfra-" + "-".join(sorted(layout)))
            replicas = ps.timeslice_replicas or 0
            if replicas:
                if layout:
                    raise UserError(
                        "a pool cannot run MIG and time-slicing here",
                        where=f"{where}.timeslice_replicas",
                        expected="one of mig_layout or timeslice_replicas",
                    )
                labels.setdefault("nvidia.com/gpu.replicas", str(replicas))
                labels["nvidia.com/gpu.product"] = (
                    labels.get("nvidia.com/gpu.product", _product_label(model)) + "-SHARED"
                )
            pools.append(
                NodePool(
                    name=ps.name,
                    gpu_model=model,
                    gpus_per_node=gpus,
                    cpu_milli=cpu,
                    memory_mib=mem,
                    count=ps.count,
                    labels=tuple(sorted(labels.items())),
                    taints=tuple(Taint(t.key, t.value, t.effect) for t in ps.taints),
                    shape=ps.shape,
                    mig_layout=layout,
                    timeslice_replicas=replicas,
                )
            )
        names = [p.name for p in pools]
        if len(set(names)) != len(names):
            raise UserError("two pools share a name", where="cluster.pools", expected="unique pool names")
    if spec.replicate > 1:
        out = []
        for r in range(spec.replicate):
            for p in pools:
                nn = tuple(f"{n}-r{r}" for n in p.node_names) if p.node_names else None
                out.append(
                    NodePool(
                        f"{p.name}-r{r}",
                        p.gpu_model,
                        p.gpus_per_node,
                        p.cpu_milli,
                        p.memory_mib,
                        p.count,
                        p.labels,
                        p.taints,
                        p.shape,
                        nn,
                        p.mig_layout,
                        p.timeslice_replicas,
                    )
                )
        pools = out
    return pools


def _as_table(pods: PodTable | list[Pod]) -> PodTable:
    return pods if isinstance(pods, PodTable) else PodTable.from_pods(pods, sort=False)


def _impossible(cluster: ClusterState, pods: PodTable | list[Pod]) -> list[tuple[int, str]]:
    """Pods that no node of the empty cluster could hold, with the reason: (row, why), by row.

    ``pods`` is a table or a list (rows in its order). Each distinct request (CPU, memory, GPUs,
    GPU models) is checked once against the cluster's capacity arrays."""
    pods = _as_table(pods)
    ids, first = pods.group(("cpu_milli", "memory_mib", "num_gpu", "gpu_models"))
    whys: list[str | None] = []
    for i in first.tolist():
        cpu, mem, ng, models = (
            int(pods.cpu_milli[i]),
            int(pods.memory_mib[i]),
            int(pods.num_gpu[i]),
            pods.gpu_models[i],
        )
        ok = (cluster.cpu_cap >= cpu) & (cluster.mem_cap >= mem)
        why = None
        if not ok.any():
            why = (
                f"asks for {cpu} mCPU and {mem} MiB; the largest node has "
                f"{int(cluster.cpu_cap.max())} mCPU and {int(cluster.mem_cap.max())} MiB"
            )
        if ng:
            gok = ok & (cluster.gpu_count >= ng)
            if models:
                allowed = np.array([cluster.models[m] in models if m >= 0 else False for m in cluster.node_model])
                gok &= allowed
            if why is None and not gok.any():
                what = "|".join(models) or "any model"
                why = f"asks for {ng} GPU(s) of {what}; no node with enough CPU and memory has that"
        whys.append(why)
    bad_class = np.array([w is not None for w in whys], dtype=bool)
    bad = [(i, whys[c]) for i, c in zip(np.flatnonzero(bad_class[ids]).tolist(), ids[bad_class[ids]].tolist())]
    # a gang needs all its pods at once: more GPUs than the cluster has of its models can never fit
    gangs: dict[str, list[int]] = {}
    for i in np.flatnonzero(pods.gang_size > 1).tolist():
        gangs.setdefault(pods.jobs[i], []).append(i)
    flagged = {i for i, _ in bad}
    for job, idx in gangs.items():
        need = sum(int(pods.num_gpu[i]) * int(pods.gpu_milli[i]) for i in idx) / MILLI_PER_GPU
        models = pods.gpu_models[idx[0]]
        have = sum(
            int(cluster.gpu_count[n])
            for n in range(cluster.n_nodes)
            if cluster.node_model[n] >= 0 and (not models or cluster.models[cluster.node_model[n]] in models)
        )
        if need > have:
            why = f"gang {job} needs {need:g} GPUs at once; the cluster has {have} of its models"
            bad += [(i, why) for i in idx if i not in flagged]
    return bad


def price_book(spec: PricesSpec, cluster: ClusterState, spot_pools: list[str] | tuple[str, ...] = ()) -> PriceBook:
    """The run's price book: per GPU model on ``spec.basis``, and per node pool (``PriceBook.pools``):
    the pools in ``spot_pools`` (the scenario's ``spot.pools``) at their model's spot price, the others on
    ``spec.basis``. Both from the same catalog rows and overrides (:func:`_price_book`); the spot what-if
    prices its pools from this book too (spot_whatif._scenario_result)."""
    book = _price_book(spec, cluster.models)
    spot = book if spec.basis == "spot" or not spot_pools else _price_book(spec, cluster.models, basis="spot")
    pools: dict[str, PoolPrice] = {}
    for p in cluster.pools:
        if not p.gpu_model or p.gpus_per_node == 0:
            continue
        src = spot if p.name in spot_pools else book
        kind = "spot" if p.name in spot_pools else spec.basis
        m = p.gpu_model
        pools[p.name] = PoolPrice(m, kind, src.usd_per_gpu_hour.get(m), src.sources.get(m, ""))
    return PriceBook(book.usd_per_gpu_hour, book.sources, book.basis, pools)


def _price_book(spec: PricesSpec, models: tuple[str, ...], basis: str | None = None) -> PriceBook:
    """GPU model -> USD per GPU-hour on ``basis`` (default ``spec.basis``): an override's own number, the
    catalog row of the model it is ``same_as``, or the model's catalog row; None where there is none."""
    basis = spec.basis if basis is None else basis
    usd: dict[str, float | None] = {}
    src: dict[str, str] = {}
    overrides = {gpu_model(k, where=f"prices.overrides.{k}").name: v for k, v in spec.overrides.items()}
    for m in models:
        ov = overrides.get(m)
        if ov and ov.same_as is None:
            val = ov.on_demand_usd_per_gpu_hour if basis == "on_demand" else ov.spot_usd_per_gpu_hour
            usd[m], src[m] = val, f"override: {ov.source}"
            continue
        target = gpu_model(ov.same_as, where=f"prices.overrides.{m}.same_as").name if ov and ov.same_as else m
        gm = gpu_model(target)
        if gm.opaque or gm.price_name is None:
            usd[m], src[m] = None, "no catalog price (opaque or unlisted model) and no override"
            continue
        try:
            p = gpu_hour_price(target, cloud=spec.cloud, region=spec.region)
        except UserError as e:
            if spec.cloud is None and spec.region is None:
                raise
            raise _price_filter_error(spec, target, e) from None
        usd[m] = p.on_demand_usd if basis == "on_demand" else p.spot_usd
        src[m] = p.source + (f"; priced as {target}: {ov.source}" if ov else "")
    return PriceBook(usd, src, basis)


def _price_filter_error(spec: PricesSpec, model: str, e: UserError) -> UserError:
    """The catalog has no price for ``model`` under ``prices.cloud``/``prices.region``: the error at
    the field that filtered every row out (an unknown cloud, a region that cloud does not have, or a
    cloud/region that does not list this GPU), with the values that exist. ``where`` is a field path
    that build() turns into ``FILE:LINE``."""
    from gpuinfra.catalog.prices import price_rows

    rows = price_rows()
    clouds = sorted({r.cloud for r in rows})
    if spec.cloud is not None and spec.cloud not in clouds:
        near = closest(spec.cloud, clouds)
        return UserError(
            f"unknown cloud '{spec.cloud}'",
            where="prices.cloud",
            expected="one of " + ", ".join(clouds),
            fix=(f"did you mean '{near}'? Or " if near else "Name one of those, or ")
            + "remove prices.cloud to price from every cloud",
        )
    regions = sorted({r.region for r in rows if spec.cloud is None or r.cloud == spec.cloud})
    if spec.region is not None and spec.region not in regions:
        near = closest(spec.region, regions)
        shown = ", ".join(regions[:30]) + (f" ({len(regions) - 30} more)" if len(regions) > 30 else "")
        return UserError(
            f"unknown region '{spec.region}'" + (f" for cloud {spec.cloud}" if spec.cloud else ""),
            where="prices.region",
            expected="one of " + shown,
            fix=(f"did you mean '{near}'? Or " if near else "Name one of those, or ") + "remove prices.region",
        )
    from gpuinfra.catalog import gpu_model as _gm

    name = _gm(model).price_name
    where_listed = sorted({f"{r.cloud}/{r.region}" for r in rows if r.accelerator == name})
    shown = ", ".join(where_listed[:20]) + (f" ({len(where_listed) - 20} more)" if len(where_listed) > 20 else "")
    return UserError(
        e.what,
        where="prices.region" if spec.region is not None else "prices.cloud",
        expected="a cloud/region that lists this accelerator: " + (shown or "none"),
        fix="choose one of those, drop the cloud/region filter, or add a price override (prices.overrides)",
    )


FIELD_ROOTS = (
    "cluster",
    "workload",
    "scheduler",
    "prices",
    "quotas",
    "faults",
    "sample_interval_s",
    "horizon_s",
    "execution",
)
"""Error locations that are field paths of the scenario (build() turns them into FILE:LINE)."""


def with_quotas(profile: Profile, quotas: QuotasSpec | None) -> Profile:
    """The profile with the KueueQuota filter configured from a ``quotas:`` block (if any)."""
    if quotas is None:
        return profile
    from dataclasses import replace as dc_replace

    filters = profile.filters if "KueueQuota" in profile.filters else (*profile.filters, "KueueQuota")
    args = dict(profile.plugin_args)
    args["KueueQuota"] = {"queues": [q.model_dump() for q in quotas.queues], "reclaim": quotas.reclaim}
    return dc_replace(profile, filters=filters, plugin_args=args)


def _never_fits(
    pools: list[NodePool], pods: PodTable | list[Pod], profile: Profile, rng: np.random.Generator
) -> dict[int, str]:
    """Pods that the profile's filters refuse on every node of the *empty* cluster, with kube's
    FitError message ("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector").

    Filters only remove nodes as the cluster fills (they compare a request with free capacity,
    labels, taints, MIG instances and quota), so a pod refused everywhere on the empty cluster can
    never run. The one exception is MIG reconfiguration (``MigFit: {reconfigure: true}``): there a
    MIG pod only needs a MIG node whose GPU model offers its profile. The check runs once per
    distinct request on a throwaway cluster, so the run itself is untouched.
    """
    from gpuinfra.sim.framework import CycleState
    from gpuinfra.sim.plugins.mig import mig_milli
    from gpuinfra.sim.scheduler import Framework

    pods = _as_table(pods)
    ids, first = pods.group(
        (
            "cpu_milli",
            "memory_mib",
            "num_gpu",
            "gpu_milli",
            "gpu_models",
            "node_selector",
            "tolerations",
            "mig_profile",
            "owners",
        ),
    )
    reps = pods.take(first)  # row k = class k (not re-sorted: the framework indexes it by class)
    members = np.argsort(ids, kind="stable")
    bounds = np.searchsorted(ids[members], np.arange(len(first) + 1))
    classes = [members[bounds[k] : bounds[k + 1]].tolist() for k in range(len(first))]
    cluster = ClusterState.from_pools(pools)
    fw = Framework(profile, cluster, reps, rng)
    reconfigure = bool(profile.plugin_args.get("MigFit", {}).get("reconfigure"))
    out: dict[int, str] = {}
    any_mig = any(pl.mig_layout for pl in pools)
    for k, idx in enumerate(classes):
        p = reps.pod(k)
        if p.mig_profile and not any_mig:
            # without a MIG pool the profile has no MigFit filter: the request must not pass as a GPU share
            why = f"asks for MIG instance {p.mig_profile}, and no pool has a mig_layout; " + _no_mig_pool_hint(
                p.mig_profile, pools
            )
            out.update((i, why) for i in idx)
            continue
        mask, results = fw.feasible(CycleState(), k)
        if mask.any():
            continue
        if reconfigure and p.mig_profile:
            rest = [r for name, r in results if name != "MigFit"]
            ok = np.ones(cluster.n_nodes, dtype=bool)
            for r in rest:
                ok &= r.ok
            for n in np.flatnonzero(ok):
                pool = cluster.pools[int(cluster.node_pool[n])]
                try:
                    if pool.mig_layout and pool.gpu_model and mig_milli(pool.gpu_model, p.mig_profile):
                        break
                except UserError:
                    continue
            else:
                why = f"no MIG node with its GPU model offers {p.mig_profile}"
                out.update((i, why) for i in idx)
            continue
        why = fw.diagnose(results).message()
        if p.mig_profile and not any(p.mig_profile in pl.mig_layout for pl in pools):
            why = f"asks for MIG instance {p.mig_profile}, which no pool's mig_layout has ({why}); " + _mig_hint(
                p.mig_profile, pools
            )
        out.update((i, why) for i in idx)
    return out


def _mig_hint(want: str, pools: list[NodePool]) -> str:
    """What a pod asking for MIG profile ``want`` can change: the profiles the MIG pools' layouts
    offer (the pod's ``mig_profile``), a valid layout of each pool's GPU that holds ``want`` (the
    pool's ``mig_layout``, from the catalog's MIG tables), or MigFit reconfiguration."""
    from gpuinfra.models import mig as migm

    offered = sorted({x for pl in pools for x in pl.mig_layout})
    fixes = []
    for pl in pools:
        if not pl.mig_layout or not pl.gpu_model:
            continue
        names = {q.name for q in migm.mig_profiles(pl.gpu_model)}
        if want not in names:
            fixes.append(
                f"pool '{pl.name}' ({pl.gpu_model}) has no {want} profile (its profiles: {', '.join(sorted(names))})"
            )
            continue
        near = migm.suggest_layouts(pl.gpu_model, [want, *pl.mig_layout], k=1)
        fixes.append(
            f"pool '{pl.name}' ({pl.gpu_model}) mig_layout [{', '.join(pl.mig_layout)}] could be [{near[0]}]"
            if near
            else f"pool '{pl.name}' ({pl.gpu_model}) cannot hold {want}"
        )
    return (
        f"set the pod's mig_profile to one the layouts offer ({', '.join(offered)}), or change a pool's "
        f"cluster.pools[].mig_layout: {'; '.join(fixes)}; or turn on scheduler.plugin_args.MigFit.reconfigure"
    )


def _no_mig_pool_hint(want: str, pools: list[NodePool]) -> str:
    """A MIG request on a cluster without MIG pools: a layout holding ``want`` for each pool whose
    GPU has the profile (catalog MIG tables), or the MIG-capable GPUs when none has."""
    from gpuinfra.catalog import gpu_model
    from gpuinfra.models import mig as migm

    fixes = []
    for pl in pools:
        if pl.gpu_model and gpu_model(pl.gpu_model).mig and want in {q.name for q in migm.mig_profiles(pl.gpu_model)}:
            near = migm.suggest_layouts(pl.gpu_model, [want], k=1)
            fixes.append(f"pool '{pl.name}' ({pl.gpu_model}): mig_layout: [{near[0]}]")
    if fixes:
        return "add a cluster.pools[].mig_layout, e.g. " + "; ".join(dict.fromkeys(fixes))
    has = [g for g in migm.mig_gpus() if want in {q.name for q in migm.mig_profiles(g)}]
    return (
        f"add a pool of a GPU with the {want} profile ({', '.join(has) or 'none in the catalog'}) and a mig_layout, "
        "or set the pod's mig_profile to a profile of the cluster's GPUs (gpuinfra mig profiles GPU)"
    )


def _refuse_impossible(bad: list[tuple[int, str]], pods: PodTable, where_of: dict[str, str], label: str) -> None:
    """Raise one error listing impossible pods grouped by reason, each group with its first rows."""
    from gpuinfra.errors import UserErrors

    groups: dict[str, list[int]] = {}
    for i, why in bad:
        groups.setdefault(why, []).append(i)
    problems = []
    for why, idx in sorted(groups.items(), key=lambda kv: kv[1][0]):
        names = pods.names
        also = [f"'{names[i]}'" + (f" ({where_of[names[i]]})" if names[i] in where_of else "") for i in idx[1:4]]
        if len(idx) > 4:
            also.append(f"{len(idx) - 4:,} more")
        problems.append(
            UserError(
                f"pod '{names[idx[0]]}' can never be scheduled: {why}"
                + (f" (also: {', '.join(also)})" if also else ""),
                where=where_of.get(names[idx[0]], label),
            )
        )
    raise UserErrors(
        problems,
        where=label,
        fix="add a node pool that can hold it, fix the request, or set workload.impossible: skip "
        "to count and skip such pods",
    )


def build(sc: Scenario, base_dir: Path | None, *, seed: int | None = None) -> Built:
    """Turn a validated scenario into a cluster, pods, profile and price book.

    Errors found here (an unknown GPU model, a plugin name or its args, a pod no node can ever
    hold, a run beyond this machine's budget: :mod:`gpuinfra.io.budget`) name the scenario file
    and the line of the field they concern, or the trace row of the pod. Raises
    :class:`~gpuinfra.errors.UserError`.
    """
    try:
        return _build(sc, base_dir, seed=seed)
    except UserError as e:
        if e.where and e.where.startswith(FIELD_ROOTS):
            e.where = sc.locate(e.where)
            e.args = (e.render(),)
        raise


def _profile(sc: Scenario, pools: list[NodePool]) -> Profile:
    from dataclasses import replace

    from gpuinfra.errors import UserErrors
    from gpuinfra.io.scenario_load import field_path, scheduler_problems

    # a scenario built in code (a lab's design, compare) did not pass the loader: check here too
    problems = scheduler_problems({"scheduler": sc.scheduler.model_dump()})
    if problems:
        raise UserErrors(
            [
                UserError(f"{field_path(p.loc)}: {p.msg}", where=sc.locate(field_path(p.loc)), fix=p.fix)
                for p in problems
            ],
            where=sc.locate("scheduler"),
        )
    profile = with_quotas(sc.scheduler.profile(), sc.quotas)
    if any(p.mig_layout for p in pools):
        # MIG pools: whole GPUs are not advertised there, and MIG requests need a free instance
        filters = profile.filters if "MigFit" in profile.filters else (*profile.filters, "MigFit")
        reserve = "MigDevices" if profile.reserve == "FirstFitDevices" else profile.reserve
        profile = replace(profile, filters=filters, reserve=reserve)
    return profile


def _check_budget(sc: Scenario, pools: list[NodePool], pods: PodTable, where_of: dict[str, str]) -> None:
    """The run budget (io/budget.py). Field paths are located in the file by build() only on error."""
    from gpuinfra.io import budget

    dur = pods.duration_s
    span_ends = pods.submit_s + np.where(np.isfinite(dur), dur, 0.0)
    last = int(np.argmax(span_ends))  # the first pod with the latest end
    end_max = float(span_ends[last])
    span = budget.run_span_s([float(pods.submit_s.min())], [end_max], sc.horizon_s)
    latest = f"pod '{pods.names[last]}' ending at {end_max:.3g} s"
    if sc.horizon_s is not None:
        budget.check_intervals(span, sc.sample_interval_s, "horizon_s")
    else:  # the trace's last pod sets the span: name its row
        budget.check_intervals(
            span, sc.sample_interval_s, where_of.get(pods.names[last], "sample_interval_s"), latest=latest
        )
    n_nodes = sum(p.count for p in pools)
    n_gpus = sum(p.count * p.gpus_per_node for p in pools)
    fault_span = sc.horizon_s if sc.horizon_s is not None else end_max
    faults = []
    for k, f in enumerate(sc.faults):
        units = {"gpu": n_gpus, "node": n_nodes, "rack": n_nodes / f.rack_nodes}[f.scope]
        units *= 1 - f.lemon_fraction + f.lemon_fraction * f.lemon_factor
        faults.append((f"faults[{k}].rate_per_day", budget.fault_events(f.rate_per_day, units, fault_span)))
    budget.check_events(
        len(pods) * budget.EVENTS_PER_POD,
        faults,
        {},
    )


def _build(sc: Scenario, base_dir: Path | None, *, seed: int | None = None) -> Built:
    from gpuinfra.io import budget
    from gpuinfra.io.traces import openb_pod_list, read_generic, read_openb_pods

    seed = sc.seed if seed is None else seed
    rngs = Rngs(seed)
    pools = _pools(sc.cluster)
    budget.check_nodes(sum(p.count for p in pools), "cluster")
    cluster = ClusterState.from_pools(pools)
    profile = _profile(sc, pools)
    w = sc.workload
    where_of: dict[str, str] = {}
    table: PodTable | None = None
    pods: list[Pod] = []
    if w.generator is not None:
        _check_generator_span(w.generator)
        n = min(w.generator.jobs, w.limit or w.generator.jobs) * w.scale
        budget.check_pods(
            n,
            "workload.generator.jobs",
            "lower generator.jobs (or workload.scale); the shape of the workload does not need millions of jobs",
        )
        if w.scale > 1:  # resampled below, as a list of pods
            pods = generate(w.generator, rngs["workload"])
        else:  # columns only: a million generated jobs need no Python object each
            table = generate_table(w.generator, rngs["workload"])
            if w.limit:
                table = table.take(slice(0, w.limit))
        label = "generator"
    else:
        assert w.trace is not None
        if w.trace.startswith("openb:"):
            src = openb_pod_list(w.trace.split(":", 1)[1])
            pods = read_openb_pods(src, pending=w.pending_pods, where_of=where_of)
            label = src.label
        else:
            path = Path(w.trace)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            if not path.exists():
                rel = "" if Path(w.trace).is_absolute() or base_dir is None else " (relative to the scenario's folder)"
                raise UserError(
                    f"trace file '{w.trace}' not found: looked for {path.resolve()}{rel}",
                    where="workload.trace",
                    expected="an existing CSV, CSV.GZ or Parquet trace (docs/trace-format.md)",
                    fix="correct the path; a relative path is read from the folder the scenario file is in",
                )
            pods = read_generic(path, label=w.trace, where_of=where_of)
            label = w.trace
    if table is None:
        pods.sort(key=lambda p: p.submit_s)
        if w.limit:
            pods = pods[: w.limit]
        if w.scale > 1:
            budget.check_pods(len(pods) * w.scale, "workload.scale", "lower workload.scale or workload.limit")
            pods = resample(pods, w.scale, rngs["workload"])
        table = PodTable.from_pods(pods, sort=False)  # row i = pods[i]: rows of errors in list order
        del pods
    bad = _impossible(cluster, table)
    flagged = np.zeros(len(table), dtype=bool)
    flagged[[i for i, _ in bad]] = True
    keep = np.flatnonzero(~flagged)
    never = _never_fits(pools, table.take(keep) if flagged.any() else table, profile, rngs.stream("impossible_check"))
    if never:
        bad += [(int(keep[j]), why) for j, why in never.items()]
        bad.sort()
    skipped: list[tuple[str, str]] = []
    if bad:
        if w.impossible == "error":
            _refuse_impossible(bad, table, where_of, label)
        drop = np.zeros(len(table), dtype=bool)
        drop[[i for i, _ in bad]] = True
        skipped = [(table.names[i], why) for i, why in bad]
        table = table.take(~drop)
    if not len(table):
        raise UserError("no pods left to simulate", where=label)
    if w.generator is not None:
        _check_generated_times(table)
    _check_arrivals_before_horizon(sc, table, where_of)
    _check_budget(sc, pools, table, where_of)
    if sc.execution is not None:
        _check_execution_block(sc, table)
    if sc.upgrade is not None:
        _check_upgrade_block(sc, table)
    if sc.spot is not None:
        names = [ps.name for ps in sc.cluster.pools]
        for k, p in enumerate(sc.spot.pools):
            if p not in names:
                raise UserError(
                    f"'{p}' is not a pool of the cluster",
                    where=sc.locate(f"spot.pools[{k}]"),
                    expected="one of " + ", ".join(names),
                )
            if p in sc.spot.pools[:k]:  # listed twice, its nodes would draw reclaims twice
                first = sc.spot.pools.index(p)
                raise UserError(
                    f"pool '{p}' is listed twice (spot.pools[{first}] and spot.pools[{k}])",
                    where=sc.locate(f"spot.pools[{k}]"),
                    expected="each spot pool once",
                    fix="remove the repeated entry",
                )
        _check_spot_notices(sc, cluster)
    if sc.autoscaler is not None:
        _check_autoscaler_block(sc, pools)
    return Built(
        sc,
        cluster,
        table.sorted_by_submit(),
        profile,
        price_book(sc.prices, cluster, sc.spot.pools if sc.spot is not None else ()),
        skipped,
        label,
        seed,
    )


def _check_generator_span(g: GeneratorSpec) -> None:
    """Refuse a generator whose expected arrival span (``jobs`` x 3600 / ``arrival_rate_per_hour``)
    exceeds the bound trace times are held to (:data:`gpuinfra.io.traces.MAX_TRACE_TIME_S`, 100 years):
    beyond it float64 seconds lose the resolution the simulator needs, exactly as for a CSV trace.

    Raises:
        UserError: at ``workload.generator.arrival_rate_per_hour`` (located in the file by build()).
    """
    from gpuinfra.io.traces import MAX_TRACE_TIME_S

    span = g.jobs * 3600.0 / g.arrival_rate_per_hour
    if span > MAX_TRACE_TIME_S:
        need = g.jobs * 3600.0 / MAX_TRACE_TIME_S
        raise UserError(
            f"arrival_rate_per_hour={g.arrival_rate_per_hour:g} spreads {g.jobs:,} jobs over about {span:.3g} s, "
            f"beyond {MAX_TRACE_TIME_S:.4g} s (100 years), the bound every trace time is held to",
            where="workload.generator.arrival_rate_per_hour",
            expected=f"arrival_rate_per_hour >= {need:.3g} for {g.jobs:,} jobs (expected span <= 100 years)",
            fix="raise arrival_rate_per_hour or lower jobs",
        )


def _check_generated_times(table: PodTable) -> None:
    """The drawn submit times within :data:`gpuinfra.io.traces.MAX_TRACE_TIME_S` (the expected span is
    checked before drawing; this catches an unlucky draw of the same seed, deterministically)."""
    from gpuinfra.io.traces import MAX_TRACE_TIME_S

    last = float(table.submit_s.max())
    if last > MAX_TRACE_TIME_S:
        raise UserError(
            f"the generated arrivals run to {last:.4g} s, beyond {MAX_TRACE_TIME_S:.4g} s (100 years)",
            where="workload.generator.arrival_rate_per_hour",
            expected=f"arrivals within {MAX_TRACE_TIME_S:.4g} s, the bound every trace time is held to",
            fix="raise arrival_rate_per_hour or lower jobs",
        )


def _check_arrivals_before_horizon(sc: Scenario, table: PodTable, where_of: dict[str, str]) -> None:
    """Refuse a scenario in which no pod arrives before ``horizon_s``: its run window would end before
    it starts (the window opens at the first submit time, sim/engine.py), with nothing to simulate.

    Raises:
        UserError: at ``horizon_s`` (located in the file by build()), naming the first submit time.
    """
    if sc.horizon_s is None or not len(table):
        return
    first = int(np.argmin(table.submit_s))
    t = float(table.submit_s[first])
    if t < sc.horizon_s:
        return
    name = table.names[first]
    at = f" ({where_of[name]})" if name in where_of else ""
    raise UserError(
        f"no pod arrives before horizon_s={sc.horizon_s:g} s: the first pod, '{name}'{at}, is submitted at {t:g} s",
        where="horizon_s",
        expected="horizon_s greater than the first submit time (the run starts at the first arrival)",
        fix=f"raise horizon_s above {t:g}, or use a trace whose jobs arrive before it",
    )


_generate, _resample = generate, resample  # the names io.scenario re-exported before the move


def _check_execution_block(sc: Scenario, table: PodTable) -> None:
    """The ``execution.kinds`` entries against each other and the trace: one entry per owner (a later
    entry would silently replace an earlier one), and every owner one the trace's pods have (an entry
    for no pod is a typo that silently leaves the intended pods without their kind, exactly as a PDB
    for an unknown owner is refused: sim/upgrade.check_upgrade). Every problem at ``FILE:LINE``.

    Raises:
        UserError: each problem found, listed together.
    """
    from gpuinfra.errors import UserErrors

    assert sc.execution is not None
    where = sc.locate
    problems: list[UserError] = []
    for a, b in sc.execution.duplicate_owners():
        owner = sc.execution.kinds[b].owner
        problems.append(
            UserError(
                f"execution.kinds[{b}] gives owner '{owner}' again: execution.kinds[{a}] "
                f"({where(f'execution.kinds[{a}].owner').rsplit(' (', 1)[0]}) already does, and the later "
                "entry would silently replace it",
                where=where(f"execution.kinds[{b}].owner"),
                expected="one kinds entry per owner",
                fix="merge the two entries, or correct the owner of one",
            )
        )
    owners = set(table.owners)
    exist = ", ".join(sorted(owners)) or "none"
    for j, k in enumerate(sc.execution.kinds):
        if k.owner not in owners:
            near = closest(k.owner, sorted(owners))
            problems.append(
                UserError(
                    f"no pod of the workload has owner '{k.owner}': this kind would apply to nothing",
                    where=where(f"execution.kinds[{j}].owner"),
                    expected=f"an owner of the workload: {exist}",
                    fix=(f"did you mean '{near}'? " if near else "") + "name an existing owner, or remove the entry",
                )
            )
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise UserErrors(problems, where=sc._label)


def _check_spot_notices(sc: Scenario, cluster: ClusterState) -> None:
    """``spot.notices`` against the cluster and the run: each on a node of a spot pool, before
    ``horizon_s`` (a notice after the run ends would silently never happen, as an upgrade starting
    after it is refused), and none listed twice (the same node at the same time). Every problem at
    ``FILE:LINE``; the spot subsystem repeats the node check for runs built in code.

    Raises:
        UserError: each problem found, listed together.
    """
    from gpuinfra.errors import UserErrors

    assert sc.spot is not None
    spot = set(sc.spot.pools)
    nodes = {cluster.node_names[n] for n in range(cluster.n_nodes) if cluster.pools[cluster.node_pool[n]].name in spot}
    problems: list[UserError] = []
    seen: dict[tuple[str, float], int] = {}
    for k, nt in enumerate(sc.spot.notices):
        if nt.node not in nodes:
            problems.append(
                UserError(
                    f"node '{nt.node}' is not a node of a spot pool",
                    where=sc.locate(f"spot.notices[{k}].node"),
                    expected="a node of " + ", ".join(sc.spot.pools),
                    fix="name a node of a spot pool (node names: POOL-0000, POOL-0001, ...)",
                )
            )
        if sc.horizon_s is not None and nt.t_s >= sc.horizon_s:
            problems.append(
                UserError(
                    f"the notice at {nt.t_s:g} s is at or after the run's horizon_s ({sc.horizon_s:g} s, "
                    f"{sc.locate('horizon_s').rsplit(' (', 1)[0]}): it would never happen",
                    where=sc.locate(f"spot.notices[{k}].t_s"),
                    expected="spot.notices[].t_s < horizon_s",
                    fix="give the notice an earlier time, or raise horizon_s",
                )
            )
        key = (nt.node, nt.t_s)
        if key in seen:
            first = seen[key]
            problems.append(
                UserError(
                    f"spot.notices[{k}] repeats spot.notices[{first}] "
                    f"({sc.locate(f'spot.notices[{first}]').rsplit(' (', 1)[0]}): node '{nt.node}' at {nt.t_s:g} s",
                    where=sc.locate(f"spot.notices[{k}]"),
                    expected="each notice once",
                    fix="remove the repeated notice",
                )
            )
        else:
            seen[key] = k
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise UserErrors(problems, where=sc._label)


def _check_upgrade_block(sc: Scenario, table: PodTable) -> None:
    """The upgrade block against the cluster and the trace (pool, surge pool, horizon, PDB owners, a
    budget no drain can satisfy), every problem at ``FILE:LINE`` (sim/upgrade.check_upgrade; the
    replay repeats the check with field paths only, for runs built in code).

    Raises:
        UserError: each problem found, listed together.
    """
    from gpuinfra.io.scenario_load import upgrade_locator
    from gpuinfra.sim.upgrade import check_upgrade

    sizes = {ps.name: ps.count for ps in sc.cluster.pools}
    owners: dict[str, int] = {}
    for o in table.owners:
        owners[o] = owners.get(o, 0) + 1
    check_upgrade(sc.upgrade, sizes, owners, sc.horizon_s, upgrade_locator(sc))


def _check_autoscaler_block(sc: Scenario, pools: list[NodePool]) -> None:
    """The autoscaler block against the cluster (pools exist, max_nodes within each pool's count, no pool
    an upgrade or spot block also manages), every problem at ``FILE:LINE`` (sim/autoscaler.check_autoscaler;
    the replay repeats the check with field paths only, for runs built in code).

    Raises:
        UserError: each problem found, listed together.
    """
    from gpuinfra.sim.autoscaler import check_autoscaler, taken_pools

    counts = {p.name: p.count for p in pools}
    check_autoscaler(sc.autoscaler, counts, taken_pools(sc.upgrade, sc.spot), lambda f: sc.locate(f).rsplit(" (", 1)[0])
