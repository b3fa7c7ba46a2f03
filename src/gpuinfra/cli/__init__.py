"""The ``gpuinfra`` command, one module per command group: each command parses its options,
calls the library and prints. This file is the table of contents: it registers every command
in the order ``gpuinfra --help`` lists them.

Errors of the user's making (:class:`gpuinfra.errors.UserError`) print as one message and exit 2
(``_app.RootGroup``); ``probe`` exits 3 where no GPU driver is present.
"""

from __future__ import annotations

from gpuinfra.cli import (
    artifact,
    capacity,
    catalog,
    deploy,
    execution,
    fill,
    health,
    lab,
    lifecycle,
    memory,
    mig,
    node,
    obs,
    plugins,
    probe,
    reliability,
    roofline,
    serving,
    sharing,
    spot,
    sweep,
    topology,
    trace,
)
from gpuinfra.cli import simulate as simulate_mod
from gpuinfra.cli._app import app

app.command()(simulate_mod.simulate)
app.command()(fill.fill)
app.command()(fill.compare)
app.command()(health.health)
app.command()(roofline.roofline)
app.command()(simulate_mod.schema)
app.command()(simulate_mod.scenarios)
app.command()(plugins.plugins)
app.command()(topology.collective)
app.command()(topology.scale)
app.command()(reliability.reliability)
app.command()(reliability.incident)
app.add_typer(catalog.catalog_app, name="catalog")
app.add_typer(trace.trace_app, name="trace")
app.add_typer(mig.mig_app, name="mig")
app.add_typer(lab.lab_app, name="lab")
app.add_typer(topology.topo_app, name="topo")
app.add_typer(memory.memory_app, name="memory")
app.add_typer(probe.probe_app, name="probe")
app.add_typer(obs.metrics_app, name="metrics")
app.add_typer(obs.alerts_app, name="alerts")
app.add_typer(sharing.export_app, name="export")
app.add_typer(sharing.sharing_app, name="sharing")
app.add_typer(artifact.artifact_app, name="artifact")
app.add_typer(artifact.compat_app, name="compat")
app.add_typer(execution.checkpoint_app, name="checkpoint")
app.add_typer(execution.io_app, name="io")
app.add_typer(lifecycle.upgrade_app, name="upgrade")
app.add_typer(lifecycle.cost_app, name="cost")
app.add_typer(deploy.precision_app, name="precision")
app.add_typer(deploy.rollout_app, name="rollout")
app.add_typer(deploy.security_app, name="security")
app.add_typer(serving.serving_app, name="serving")
app.add_typer(sweep.sweep_app, name="sweep")
app.add_typer(node.node_app, name="node")
app.add_typer(capacity.capacity_app, name="capacity")
app.add_typer(spot.spot_app, name="spot")


def main() -> None:
    """Entry point of the ``gpuinfra`` console script."""
    app()


__all__ = ["app", "main"]
