"""Local: run the stack here, as real processes.

`procs` (spawning and stopping processes), `pki` (certificates for the control plane),
`rehearse` (the stack's scheduler and workers as local processes) with `smoke` (its
workload), and `cluster/` (a real Kubernetes control plane on loopback with the stack applied
to it). `cluster/` builds on `rehearse`, never the other way round.
"""
