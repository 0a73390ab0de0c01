"""PUT /pipeline: one source image → many outputs written to a storage back-end."""

# A task's (and a batch source's) `status` in the response and the manifest.
SUCCESS = "success"
FAILED = "failed"
