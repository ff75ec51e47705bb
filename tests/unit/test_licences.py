"""The licence check that CI runs over the runtime dependencies and the shipped model."""

from __future__ import annotations

import importlib.util

import pytest

from support.project import PROJECT_DIR

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


def test_the_runtime_lock_is_the_runtime_and_the_dev_lock_holds_the_rest():
    """requirements.txt (what the image installs) pins exactly what the runtime needs: no test or benchmark
    tool reaches the image. requirements-dev.txt adds those on top of it."""
    import re

    def names(path) -> set[str]:
        lines = (PROJECT_DIR / path).read_text().splitlines()
        return {re.sub(r"[-_.]+", "-", line.split("==")[0]).lower() for line in lines if "==" in line}

    runtime = set(licences.runtime_distributions()) - {"musicrec"}
    assert names("requirements.txt") == runtime
    dev = names("requirements-dev.txt")
    assert not dev & runtime and {"pytest", "ruff", "hypothesis", "schemathesis", "pydub"} <= dev
    assert "-r requirements.txt" in (PROJECT_DIR / "requirements-dev.txt").read_text().splitlines()
