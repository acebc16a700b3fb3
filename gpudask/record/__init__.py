"""Record: run the Pulumi program under Pulumi's mocks and read what it declared.

`recorder` runs `__main__.py` for a stack and returns every resource; `view` reads that
recording (the settings it parsed, its Kubernetes manifests); `dask_operator` renders what
the Dask operator would create from its DaskClusters; `pulumi_internals` is every private
SDK name the recorder relies on. Imports components/ and nothing else of gpudask.
"""
