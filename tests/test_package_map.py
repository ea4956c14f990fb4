"""The package map (WORKSPACE.md, "Package map"): which top-level package may import which, checked on
the AST of every ``.py`` file (imports inside functions included), and entry modules imported by no code
outside ``tests/``."""
from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("infnet_tf", "pipelines", "export", "bench", "tests")

# package -> the other packages its modules may import (the library is infnet_tf; nothing imports tests).
ALLOWED = {
    "infnet_tf": set(),
    "pipelines": {"infnet_tf"},
    "export": {"infnet_tf"},
    "bench": {"infnet_tf", "pipelines", "export"},
    "tests": {"infnet_tf", "pipelines", "export", "bench"},
}
# Entry modules (``python -m ...``: flags + main; they sit above every package) and the packages they
# may import beyond their own package's arrows. Library code never imports them.
ENTRY_MODULES = {
    "infnet_tf/train.py": {"export"},   # builds the streaming export hook from export.exporter
    "infnet_tf/cluster.py": set(),
    "infnet_tf/cluster.py": set(),      # the local-cluster launcher (logic: infnet_tf/training/local_cluster.py)
    "pipelines/build_dataset.py": set(),
    "pipelines/make_sample_data.py": set(),  # logic: pipelines/sample_data.py
    "infnet_tf/spec.py": set(),                # the spec checker; re-exports infnet_tf.feature_spec for users' code
    "export/export_model.py": set(),
    "export/client.py": set(),          # the library: export/serving_client.py
    "export/serving_config.py": set(),  # the library: export/serving_files.py
    "bench/beam_throughput.py": set(),
    "bench/ps_scale.py": set(),
    "bench/block_scaling.py": set(),
    "bench/compare_runs.py": set(),   # the library: bench/run_comparison.py
    "bench/diagnostics.py": set(),
    "bench/model_efficiency.py": set(),
    "bench/report.py": set(),
    "bench/serving_latency.py": set(),
    "bench/train_throughput.py": set(),
}


def module_name(path: str) -> str:
    return path[:-len(".py")].replace("/", ".").removesuffix(".__init__")


def imported_modules(source: str, filename: str = "<string>") -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every absolute import in ``source``; ``from a import b`` yields
    ``a.b`` too (``b`` may be a module)."""
    out = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return out


def python_files(package: str) -> list[str]:
    paths = []
    for root, dirs, files in os.walk(os.path.join(ROOT, package)):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        paths += [os.path.relpath(os.path.join(root, f), ROOT) for f in files if f.endswith(".py")]
    return sorted(paths)


def violations(path: str, source: str) -> list[str]:
    """Each import in ``source`` (the file ``path``, relative to the repository) the map forbids."""
    package = path.split("/", 1)[0]
    allowed = ALLOWED[package] | ENTRY_MODULES.get(path, set()) | {package}
    entries = {module_name(p) for p in ENTRY_MODULES}
    found, seen = [], set()
    for line, name in imported_modules(source, path):
        top = name.split(".", 1)[0]
        if top in PACKAGES and top not in allowed and (line, top) not in seen:
            seen.add((line, top))
            found.append(f"{path}:{line}: imports {name} ({package} may import {sorted(allowed - {package})})")
        if name in entries and package != "tests" and module_name(path) != name:
            found.append(f"{path}:{line}: imports the entry module {name} (move what it needs into a library module)")
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_follow_the_package_map(package):
    found = []
    for path in python_files(package):
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            found += violations(path, f.read())
    assert not found, "\n".join(found)


def test_the_check_sees_forbidden_imports():
    """The checker itself: lazy imports, ``from`` imports of modules and entry modules are all caught."""
    lazy = "def hook():\n    from export.exporter import export_from_trainer\n"
    assert violations("infnet_tf/training/streaming.py", lazy) == [
        "infnet_tf/training/streaming.py:2: imports export.exporter (infnet_tf may import [])"]
    assert len(violations("infnet_tf/x.py", "import bench.measure\nfrom pipelines import io\n")) == 2
    assert violations("export/x.py", "from pipelines import io\n")
    assert violations("pipelines/x.py", "from export import versions\n")
    assert violations("pipelines/x.py", "import bench\n")
    assert violations("export/x.py", "from infnet_tf.features import FeatureLayout\n") == []
    assert violations("bench/x.py", "from export import export_model\n") == [
        "bench/x.py:1: imports the entry module export.export_model (move what it needs into a library module)"]
    assert violations("bench/x.py", "from export.exporter import export_model\n") == []  # the function
    assert violations("bench/report_lib/x.py", "from bench import serving_latency\n") == [
        "bench/report_lib/x.py:1: imports the entry module bench.serving_latency (move what it needs into a "
        "library module)"]
    assert violations("infnet_tf/train.py", "from export.exporter import export_from_trainer\n") == []
    assert violations("tests/x.py", "from infnet_tf import train\n") == []


def test_every_entry_module_exists_and_runs_main():
    for path in ENTRY_MODULES:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            assert 'if __name__ == "__main__":' in f.read(), path
