"""Request parameters → validated, immutable engine options plus ordered warnings."""
