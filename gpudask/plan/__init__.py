"""Plan: what a recorded stack would do, offline.

`checks` (schemas, the operator's view, GKE enums, scheduling, drivers), `report` (the plan,
its cost, its files, the diff of two plans and the PR comment), `quotas`, `timeline` (cold
start), `tfplan` (the GKE half for Terraform scanners), `replacements` (which field change
replaces what). Reads recordings (gpudask.record); starts no process.
"""
