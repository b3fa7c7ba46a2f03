"""PodDisruptionBudgets and the eviction API, as Kubernetes decides them.

Sources (Kubernetes docs, policy/v1):
- PodDisruptionBudgetSpec (kubernetes.io/docs/reference/kubernetes-api/policy-resources/pod-disruption-budget-v1):
  ``minAvailable`` -- an eviction is allowed if at least that many selected pods are still
  available after it (``"100%"`` blocks every voluntary eviction); ``maxUnavailable`` -- allowed
  if at most that many are unavailable after it (``0`` blocks them all); the two are mutually
  exclusive. ``unhealthyPodEvictionPolicy``: ``IfHealthyBudget`` (default: a running pod that is
  not Ready may be evicted only while the application is not disrupted, i.e. currentHealthy >=
  desiredHealthy) or ``AlwaysAllow`` (a running, not-Ready pod may always be evicted).
- Specifying a Disruption Budget (kubernetes.io/docs/tasks/run-application/configure-pdb,
  "Rounding logic when specifying percentages"): a percentage is scaled to the expected pod
  count and rounded *up* (the disruption controller calls ``GetScaledValueFromIntOrPercent`` with
  ``roundUp=true`` for both fields). With an integer ``minAvailable`` the expected count is the
  number of selected pods; desiredHealthy = minAvailable. With ``maxUnavailable``,
  desiredHealthy = expected - ceil(maxUnavailable), floored at 0.
- ``disruptionsAllowed`` = max(0, currentHealthy - desiredHealthy).
- Eviction API (kubernetes.io/docs/concepts/scheduling-eviction/api-eviction): 200 when the
  budget allows (or no budget covers the pod), 429 Too Many Requests when it does not (retry
  later), 500 when several budgets select the same pod. A pod that is not running (Pending,
  Succeeded, Failed) is evicted without consulting the budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpuinfra.errors import UserError

IntOrPercent = int | str


def scaled(value: IntOrPercent, total: int, *, where: str = "pdb") -> int:
    """An IntOrString scaled as Kubernetes does: an int as is, ``"N%"`` as ceil(N/100 x total).

    Raises UserError for a negative value, a percentage outside 0-100 % or a malformed string.
    """
    if isinstance(value, bool):
        raise UserError(f"{value!r} is not an integer or a percentage", where=where, expected="3 or '50%'")
    if isinstance(value, int):
        if value < 0:
            raise UserError(f"{value} is negative", where=where, expected="an integer >= 0 or 'N%'")
        return value
    s = str(value).strip()
    if not s.endswith("%") or not s[:-1].strip().isdigit():
        raise UserError(f"{value!r} is not an integer or a percentage", where=where, expected="3 or '50%'")
    pct = int(s[:-1])
    if pct > 100:
        raise UserError(f"{value!r} is above 100 %", where=where, expected="0% .. 100%")
    # integer arithmetic: ceil(pct * total / 100) without float roundoff (as intstr does)
    return -(-pct * total // 100)


@dataclass(frozen=True)
class PodDisruptionBudget:
    """One PodDisruptionBudget over a group of pods (here: the pods of one owner / application)."""

    selector: str
    """The owner (team or application name) whose pods the budget selects."""
    min_available: IntOrPercent | None = None
    max_unavailable: IntOrPercent | None = None
    unhealthy_pod_eviction_policy: str = "IfHealthyBudget"

    def __post_init__(self) -> None:
        if (self.min_available is None) == (self.max_unavailable is None):
            raise UserError(
                "give exactly one of minAvailable and maxUnavailable",
                where=f"upgrade.pdbs.{self.selector}",
                expected="minAvailable or maxUnavailable (mutually exclusive in policy/v1)",
            )
        if self.unhealthy_pod_eviction_policy not in ("IfHealthyBudget", "AlwaysAllow"):
            raise UserError(
                f"unhealthyPodEvictionPolicy {self.unhealthy_pod_eviction_policy!r}",
                where=f"upgrade.pdbs.{self.selector}.unhealthyPodEvictionPolicy",
                expected="IfHealthyBudget or AlwaysAllow",
            )
        # validate the value's form early (scaled raises on malformed input)
        field = "minAvailable" if self.min_available is not None else "maxUnavailable"
        scaled(
            self.min_available if self.min_available is not None else self.max_unavailable,
            1,
            where=f"upgrade.pdbs.{self.selector}.{field}",
        )

    def desired_healthy(self, expected: int) -> int:
        """Pods that must stay healthy when ``expected`` pods are selected (the controller's desiredHealthy)."""
        if self.max_unavailable is not None:
            return max(0, expected - scaled(self.max_unavailable, expected, where=self.selector))
        return scaled(self.min_available, expected, where=self.selector)  # type: ignore[arg-type]

    def disruptions_allowed(self, expected: int, healthy: int) -> int:
        """status.disruptionsAllowed: max(0, currentHealthy - desiredHealthy); 0 when nothing is expected."""
        if expected <= 0:
            return 0
        return max(0, healthy - self.desired_healthy(expected))

    def eviction(self, *, expected: int, healthy: int, pod_running: bool = True, pod_ready: bool = True) -> int:
        """The eviction API's answer for one pod the budget selects: 200 (evicted) or 429 (refused)."""
        if not pod_running:
            return 200
        if not pod_ready:
            if self.unhealthy_pod_eviction_policy == "AlwaysAllow":
                return 200
            return 200 if healthy >= self.desired_healthy(expected) else 429
        return 200 if self.disruptions_allowed(expected, healthy) > 0 else 429

    def blocks_every_drain(self, expected: int) -> bool:
        """True when no eviction of a healthy pod can ever succeed (desiredHealthy >= expected > 0)."""
        return expected > 0 and self.desired_healthy(expected) >= expected

    def check_drainable(self, expected: int) -> None:
        """Raise UserError naming the rule when no drain can satisfy this budget."""
        if self.blocks_every_drain(expected):
            field = "minAvailable" if self.min_available is not None else "maxUnavailable"
            val = self.min_available if self.min_available is not None else self.max_unavailable
            raise UserError(
                f"PodDisruptionBudget for '{self.selector}' ({field}: {val!r} over {expected} pods) refuses every "
                "eviction: desiredHealthy >= expected pods, so no drain can ever finish",
                where=f"upgrade.pdbs.{self.selector}",
                expected="a budget that allows at least one disruption (e.g. maxUnavailable: 1, or minAvailable "
                f"below {expected})",
                fix="lower minAvailable / raise maxUnavailable, add replicas, or set force_after_s to force-drain",
            )


def budget_from_dict(selector: str, d: dict) -> PodDisruptionBudget:
    """A budget from its Kubernetes spelling (``minAvailable``/``maxUnavailable``/``unhealthyPodEvictionPolicy``)."""
    return PodDisruptionBudget(
        selector,
        d.get("minAvailable"),
        d.get("maxUnavailable"),
        d.get("unhealthyPodEvictionPolicy", "IfHealthyBudget"),
    )
