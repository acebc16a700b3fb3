"""`pulumi preview --policy-pack policies`: serves the pack to the Pulumi engine."""

from pack import policies
from pulumi_policy import PolicyPack

PolicyPack(name="gpu-dask", policies=policies())
