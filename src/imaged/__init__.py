"""imaged: an HTTP server for image processing on libvips."""

__version__ = "0.2.3"

__all__ = ["__version__"]
