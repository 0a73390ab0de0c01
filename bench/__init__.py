"""The load benchmark: imaged against in-process pyvips and thumbor (bench/README.md)."""
