"""A small synthetic sample dataset for the benches run without ``--data``: raw logs from
``pipelines.make_sample_data``, built by the dataset job's plain runner (``pipelines.plain``)."""
from __future__ import annotations

import os


def build_sample(root: str, impressions: int) -> str:
    from infnet_tf.spec import load_spec
    from pipelines import make_sample_data, plain
    from pipelines.job import JobOptions

    spec_path = os.path.join(os.path.dirname(__file__), "..", "feature_specs", "kuairand_synthetic.yaml")
    raw, data = os.path.join(root, "raw"), os.path.join(root, "dataset")
    if make_sample_data.main([f"--output={raw}", f"--num_impressions={impressions}", "--days=4"]) != 0:
        raise RuntimeError("make_sample_data failed")
    plain.run(load_spec(spec_path), JobOptions(spec_path=spec_path, output=data, raw=raw, num_shards=2))
    return data
