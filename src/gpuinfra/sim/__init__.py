"""The discrete-event simulator: kernel, cluster state, workloads, scheduler framework, recorder."""
