"""The shell commands of the README and docs/ against the repository: each names something that exists
(`make check-readme`); the README stays a first page."""

from __future__ import annotations

import re
import shlex

from support.project import PROJECT_DIR

README = PROJECT_DIR / "README.md"


PAGES = [README, *sorted((PROJECT_DIR / "docs").glob("*.md"))]


def readme_shell_commands() -> list[str]:
    """The command lines of the ```bash blocks, continuation lines joined, comments dropped."""
    blocks = [b for page in PAGES for b in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.DOTALL)]
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_the_readmes_shell_commands_name_targets_commands_and_files_that_exist():
    targets = set(re.findall(r"^([a-z][a-z-]*):", (PROJECT_DIR / "Makefile").read_text(), flags=re.MULTILINE))
    subcommands = set(
        re.findall(r"add_parser\(\s*\"([a-z-]+)\"", (PROJECT_DIR / "include/musicrec/cli.py").read_text())
    )
    missing = []
    for command in readme_shell_commands():
        words = shlex.split(command) if command.startswith("make ") else command.split()
        if words[0] == "make":
            missing += [f"make target {w}" for w in words[1:] if "=" not in w and w not in targets]
        elif words[0].endswith("/musicrec") or words[0] == "musicrec":
            missing += [] if words[1] in subcommands else [command]
        elif words[0] in ("bash", "python", ".venv/bin/python") and words[1].endswith((".sh", ".py")):
            missing += [] if (PROJECT_DIR / words[1]).exists() else [command]
        elif words[0] == "cp":
            missing += [] if (PROJECT_DIR / words[1]).exists() else [command]
    assert missing == []


def test_the_readme_is_a_first_page_and_its_links_lead_somewhere():
    assert len(README.read_bytes()) <= 8 * 1024
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"
