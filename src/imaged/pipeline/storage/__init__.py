"""Storage back-ends for pipeline outputs (one module per back-end)."""
