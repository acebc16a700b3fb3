"""gpu-dask Pulumi components: what to build (settings, *_spec builders) and how (ComponentResources)."""
