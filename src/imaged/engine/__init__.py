"""The image engine: decode, transform, encode and metadata on libvips. No HTTP in here.

`Engine` (engine/core.py) is the one async entry point; everything else in this package is
plain blocking code that `Engine` runs in worker threads behind the limiter.
"""
