"""Load and fault suites for the learning-city engine (see docs/reliability.md).

    python -m loadtest run --residents 200 --duration 120
    python -m loadtest faults
"""
