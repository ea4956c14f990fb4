"""Building blocks of ``python -m bench.report`` (see ``bench/REPORT.md``).

``config`` the suite's flags, presets and model configs; ``runner`` model runs through the batch
trainer (cached per config); ``gbdt`` the LightGBM reference; ``sections`` quality, ablations, hub
sweep, scaling, attention; ``efficiency`` the ratios from the other benches; ``plots`` the figures;
``environment`` hardware/versions/command; ``markdown`` report.md.
"""
