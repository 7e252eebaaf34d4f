"""Every code block of the README runs (the set-up commands run in .ci/run)."""

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
README = (PROJECT_ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)
SETUP_COMMANDS = ("pip install", "apt-get install")


def test_readme_has_the_two_setup_commands():
    bash = [code.strip() for language, code in BLOCKS if language == "bash"]
    assert 'pip install . && gcnprune quickstart' in bash
    assert 'pip install -e ".[test,tfmot]" && gcnprune app --install && pytest' in bash


@pytest.mark.parametrize("code", [code for language, code in BLOCKS if language == "python"])
def test_python_blocks_run(code):
    exec(compile(code, "README.md", "exec"), {})


def cli_lines():
    for language, code in BLOCKS:
        if language != "bash":
            continue
        for line in code.splitlines():
            command = line.split("#")[0].strip()
            if command and not command.startswith(SETUP_COMMANDS):
                yield command


def test_cli_blocks_run_in_order(tmp_path):
    if shutil.which("gcnprune") is None:
        pytest.skip("the gcnprune command is not installed (pip install -e .)")
    for command in cli_lines():
        # A fresh scratch folder for the README's /tmp paths: output folders left by an earlier
        # run (of an older version) are rightly refused by the resumable commands.
        command = command.replace("/tmp/", f"{tmp_path}/")
        result = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
