"""The licence check that CI runs over the runtime dependencies and the shipped model."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import PROJECT_DIR

spec = importlib.util.spec_from_file_location("licences", PROJECT_DIR / "tools" / "licences.py")
licences = importlib.util.module_from_spec(spec)
spec.loader.exec_module(licences)


@pytest.mark.parametrize(
    "licence, refused",
    [
        ("Apache-2.0", False),
        ("MIT OR Apache-2.0", False),
        ("LGPL-3.0-or-later", False),
        ("GPL-2.0-or-later", False),  # an unmodified library: listed apart
        ("AGPL-3.0-only", True),
        ("GNU Affero General Public License v3", True),
        ("SSPL-1.0", True),
        ("CC-BY-NC-SA-4.0", True),
        ("Proprietary", True),
        ("", True),
    ],
)
def test_what_the_check_refuses(licence, refused):
    assert (licences.refusal(licence) is not None) == refused


def test_the_runtime_and_the_shipped_model_pass_and_test_tools_are_not_the_runtime():
    runtime = licences.runtime_distributions()
    assert {"apache-airflow", "librosa", "onnxruntime", "pebble", "musicrec"} <= set(runtime)
    assert not {"pytest", "hypothesis", "schemathesis", "ruff"} & set(runtime)
    assert licences.model_licence() == "ISC"
    assert all(licences.refusal(licences.licence_of(dist)) is None for dist in runtime.values())
