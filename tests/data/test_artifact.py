"""The one transform-artifact loader: typed, from a data directory or the JSON, clear errors."""
import json

import pytest

from infnet_tf.data import artifact
from infnet_tf.data.dataset_dir import artifact_path
from infnet_tf.transform import TransformArtifact
from tests.tiny_data import layout_only_artifact, tiny_layout


def test_load_from_the_data_dir_or_the_json(tmp_path):
    layout = tiny_layout()
    layout_only_artifact(layout, spec_fingerprint="abc").save(artifact_path(str(tmp_path)))
    loaded = artifact.load(str(tmp_path))
    assert isinstance(loaded, TransformArtifact) and loaded.spec_fingerprint == "abc"
    assert loaded.feature_layout == layout
    assert artifact.load_layout(artifact_path(str(tmp_path))) == layout
    assert TransformArtifact.load(str(tmp_path)).to_dict() == loaded.to_dict()


def test_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no transform artifact at .*elsewhere"):
        artifact.load(str(tmp_path / "elsewhere"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        artifact.load(str(bad))
    bad.write_text(json.dumps({"format": "something"}))
    with pytest.raises(ValueError, match="bad.json has no \"layout\""):
        artifact.load(str(bad))
    bad.write_text(json.dumps({"layout": tiny_layout().to_dict()}))  # no format / version
    with pytest.raises(ValueError, match="bad.json: not a transform artifact"):
        artifact.load(str(bad))


def test_typed_entries_read_the_fitted_transforms(tmp_path):
    fitted = layout_only_artifact(tiny_layout())
    fitted.categorical = {
        "user_id": {"kind": "vocabulary", "dtype": "int64", "values": [7, 3], "oov_buckets": 2, "vocab_size": 5},
        "ctx": {"kind": "hash", "hash_buckets": 9, "vocab_size": 10, "raw_dtype": "int64"}}
    fitted.dense = {"price": {"binning": "quantile", "boundaries": [1.0, 5.0], "vocab_size": 4}}
    fitted.counters = {"clicks_7d": {"binning": "log", "boundaries": [0.5], "vocab_size": 3}}
    fitted.time_gap = {"click": {"unit_ms": 60_000, "num_buckets": 3, "boundaries_ms": [60_000, 3_600_000]}}
    fitted.save(str(tmp_path / "a.json"))
    loaded = artifact.load(str(tmp_path / "a.json"))
    vocab, hashed = loaded.categorical_transform("user_id"), loaded.categorical_transform("ctx")
    assert (vocab.is_hash, list(vocab.values), vocab.oov_buckets, vocab.dtype, vocab.raw_dtype) == \
        (False, [7, 3], 2, "int64", None)
    assert (hashed.is_hash, hashed.hash_buckets, hashed.dtype, hashed.raw_dtype) == (True, 9, "string", "int64")
    assert list(loaded.binned_transform("price").boundaries) == [1.0, 5.0]
    assert loaded.binned_transform("clicks_7d").vocab_size == 3 == loaded.vocab_size("clicks_7d")
    assert loaded.time_gap_transform("click").boundaries_ms == [60_000, 3_600_000]
    # the typed entries drive the transform: vocabulary ids 1..V, then OOV; buckets by boundaries
    assert loaded.token_ids("user_id", [7, 3, None]).tolist()[:2] == [1, 2]
    assert loaded.token_ids("price", [0.5, 1.0, 9.0, float("nan")]).tolist() == [1, 2, 3, 0]
    with pytest.raises(KeyError, match="unknown token 'nope'"):
        loaded.binned_transform("nope")



def test_binned_tokens_are_ordinal_also_in_artifacts_written_before_the_mark(tmp_path):
    """The dataset job marks dense fields and counters ``ordinal`` in the layout; an older artifact's
    layout (no mark) gets the same marks from its dense/counters entries on load."""
    from infnet_tf.data.layout import FeatureLayout

    old = tiny_layout().to_dict()
    for f in old["categorical"]:
        f.pop("ordinal", None)
    fitted = layout_only_artifact(FeatureLayout.from_dict(old))
    fitted.layout = old
    ctx = fitted.feature_layout.categorical[2].name
    fitted.dense = {ctx: {"binning": "quantile", "boundaries": [1.0], "vocab_size": 3}}
    fitted.save(str(tmp_path / "a.json"))
    marks = {f.name: f.ordinal for f in artifact.load_layout(str(tmp_path / "a.json")).categorical}
    assert marks == {f["name"]: f["name"] == ctx for f in old["categorical"]}
