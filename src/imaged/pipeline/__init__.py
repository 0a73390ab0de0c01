"""PUT /pipeline: one source image → many outputs written to a storage back-end."""
