"""Every code block of the README and of the guides in docs/guide runs (the set-up commands
run in .ci/run): Python blocks each on its own, each page's command lines in order."""

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PAGES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs" / "guide").glob("*.md"))]
SETUP_COMMANDS = ("pip install", "apt-get install")


def blocks(page: Path, language: str) -> list[str]:
    return [code for found, code in re.findall(r"```(\w+)\n(.*?)```", page.read_text(), flags=re.S)
            if found == language]


def test_readme_has_the_two_setup_commands():
    bash = [code.strip() for code in blocks(PROJECT_ROOT / "README.md", "bash")]
    assert 'pip install . && gcnprune quickstart' in bash
    assert 'pip install -e ".[test,tfmot]" && gcnprune app --install && pytest' in bash


def test_the_readme_is_a_front_door():
    assert len((PROJECT_ROOT / "README.md").read_text().splitlines()) <= 200


def test_every_relative_link_of_every_page_resolves():
    for page in [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name}: {target}"


@pytest.mark.parametrize("code", [
    pytest.param(code, id=f"{page.name}-{index}")
    for page in PAGES for index, code in enumerate(blocks(page, "python"))])
def test_python_blocks_run(code):
    exec(compile(code, "docs", "exec"), {})


def command_lines(page: Path):
    for code in blocks(page, "bash"):
        for line in code.splitlines():
            command = line.split("#")[0].strip()
            if command and not command.startswith(SETUP_COMMANDS):
                yield command


@pytest.mark.parametrize("page", [page for page in PAGES if list(command_lines(page))],
                         ids=lambda page: page.name)
def test_command_lines_run_in_order(page, tmp_path):
    if shutil.which("gcnprune") is None:
        pytest.skip("the gcnprune command is not installed (pip install -e .)")
    for command in command_lines(page):
        # A fresh scratch folder for the pages' /tmp paths: output folders left by an earlier
        # run (of an older version) are rightly refused by the resumable commands.
        command = command.replace("/tmp/", f"{tmp_path}/")
        result = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
