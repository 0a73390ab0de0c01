"""`imaged batch`: a pipeline config over every object of a directory or an S3 prefix
(batch.md): sources, key templates, manifest, progress, local worker processes and Ray."""
