"""The small-scale replication of the paper's claims (``tools/replicate_flux.py``).

``design``: what is trained (datasets, pretraining arms, runs, schedules);
``pipeline``: the steps over one state, saved after each; ``significance``: the
statistics; ``report``: ``results.md`` from the saved predictions alone.
"""
