"""The HTTP layer: routes, request parsing, the error model, listening. No pyvips here."""
