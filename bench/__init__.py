"""MTM Consult benchmarks: see bench/README.md."""
