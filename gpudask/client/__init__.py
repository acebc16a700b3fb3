"""Client: using a deployed stack from a notebook.

`connect` (stack outputs -> a Dask Client; what `pip install "gpu-dask[client]"` is for: no
Pulumi SDK), `versions` (which Dask a RAPIDS image runs, and whether this environment runs the
same). Imports nothing else of gpudask.
"""
