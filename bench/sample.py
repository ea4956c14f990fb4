"""A small synthetic sample dataset for the benches run without ``--data``: raw logs from
``pipelines.sample_data``, built by the dataset job's plain runner (``pipelines.plain``)."""
from __future__ import annotations

import os


def build_sample(root: str, impressions: int) -> str:
    from infnet_tf.feature_spec import load_spec
    from pipelines import plain, sample_data
    from pipelines.job import JobOptions

    spec_path = os.path.join(os.path.dirname(__file__), "..", "feature_specs", "kuairand_synthetic.yaml")
    raw, data = os.path.join(root, "raw"), os.path.join(root, "dataset")
    config = sample_data.Config(num_impressions=impressions, days=4)
    sample_data.write_tables(sample_data.generate(config, log=lambda *_: None), raw)
    plain.run(load_spec(spec_path), JobOptions(spec_path=spec_path, output=data, raw=raw, num_shards=2))
    return data
