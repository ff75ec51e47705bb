"""The library's layers: each sub-package imports only those below it, and only `musicrec.airflow` (and the
object-storage adapter, on first use) imports Airflow."""

import ast
import subprocess
import sys
from pathlib import Path

from support.project import PROJECT_DIR

LIBRARY = PROJECT_DIR / "include" / "musicrec"
# Lowest first; a module may import its own layer and those before it. pipeline and serve are siblings.
LAYERS = [
    {"settings", "errors", "progress"},
    {"store"},
    {"analysis"},
    {"library"},
    {"index"},
    {"pipeline", "serve"},
    {"airflow", "demo"},
    {"cli"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _modules() -> dict[str, Path]:
    return {".".join(p.relative_to(LIBRARY.parent).with_suffix("").parts): p for p in LIBRARY.rglob("*.py")}


def _imported(path: Path) -> set[str]:
    """Every musicrec module a file imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "musicrec":
            found |= {node.module} if node.module.count(".") > 1 else {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "musicrec"}
    return found


def _layer(module: str) -> str:
    return module.split(".")[1]


def test_every_module_belongs_to_a_layer():
    unplaced = {m for m in _modules() if m != "musicrec.__init__" and _layer(m).removesuffix(".__init__") not in RANK}
    assert not unplaced


def test_imports_point_down_the_layers_only():
    upward = [
        f"{module} imports {target}"
        for module, path in _modules().items()
        if module != "musicrec.__init__"
        for target in _imported(path)
        if RANK[_layer(target)] > RANK[_layer(module)]
        or (RANK[_layer(target)] == RANK[_layer(module)] and _layer(target) != _layer(module))
    ]
    assert upward == []


def test_the_layer_rule_sees_an_upward_import(tmp_path):
    bad = tmp_path / "storage.py"
    bad.write_text("def f():\n    from musicrec.pipeline import stages\n")
    assert _imported(bad) == {"musicrec.pipeline.stages"}


def test_below_the_airflow_layer_nothing_loads_airflow():
    """Queries, the CLI's reading commands and the analysis run without Airflow; object storage (an
    `s3://` URL) is the one exception, and it loads Airflow only when such a URL is used."""
    below = sorted(
        m.removesuffix(".__init__")
        for m in _modules()
        if _layer(m) not in ("airflow", "cli") and m != "musicrec.store.objects"
    )
    code = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)\nprint('airflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code, *below], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_only_the_airflow_layer_and_the_object_storage_adapter_import_airflow():
    importing = sorted(
        module
        for module, path in _modules().items()
        if any(
            isinstance(node, ast.Import | ast.ImportFrom)
            and any(name.split(".")[0] == "airflow" for name in _names(node))
            for node in ast.walk(ast.parse(path.read_text()))
        )
    )
    assert importing and all(m.startswith("musicrec.airflow.") or m == "musicrec.store.objects" for m in importing)


def _names(node: ast.Import | ast.ImportFrom) -> list[str]:
    return [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
