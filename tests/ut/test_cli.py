"""The command-line entry point."""

import subprocess
import sys

from flash_attention import cli


def test_check_on_cpu(capsys):
    assert cli.main(["check", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and out.count("PASS") == 2 * len(cli.feature_cases("cpu"))


def test_help_and_subcommands():
    res = subprocess.run([sys.executable, "-m", "flash_attention.cli", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "check" in res.stdout and "plot" in res.stdout
    res = subprocess.run([sys.executable, "-m", "flash_attention.cli", "plot", "--help"], capture_output=True,
                         text=True)
    assert res.returncode == 0 and "--out-dir" in res.stdout
