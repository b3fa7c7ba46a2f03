"""PrioritySort (QueueSort): higher priority first, then earlier arrival, then input order.

Contract: the key is total and stable, so equal pods keep their arrival order (FIFO within a
priority), as kube-scheduler's default PrioritySort does with its timestamp tie-break.
"""

from __future__ import annotations

from gpuinfra.sim.framework import QueueSortPlugin, register
from gpuinfra.sim.workload import PodTable


@register
class PrioritySort(QueueSortPlugin):
    name = "PrioritySort"
    static_key = True  # priority, submit time and index: fixed for the run

    def key(self, pods: PodTable, i: int) -> tuple:
        return (-int(pods.priority[i]), float(pods.submit_s[i]), i)


@register
class Fifo(QueueSortPlugin):
    """Arrival order only; priorities ignored."""

    name = "FIFO"
    static_key = True  # priority, submit time and index: fixed for the run

    def key(self, pods: PodTable, i: int) -> tuple:
        return (float(pods.submit_s[i]), i)
