"""A separate program faking the OpenAI Videos API (Sora 2 jobs) offline: `python -m simulator`.

It imports nothing from the dashboard (`jobs`, `remixsite`); see docs/architecture.md,
"Simulator contract", for the options, fault kinds and control endpoints.
"""
