"""The `smartcell` command: dispatch, help, unknown commands."""
import subprocess
import sys

from smartcell.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(['--help']) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_unknown_command_is_refused_with_the_accepted_ones(capsys):
    assert main(['simulate']) == 2
    err = capsys.readouterr().err
    assert "unknown command 'simulate'" in err and 'sim' in err


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2


def test_every_command_module_has_a_main():
    import importlib
    for module, _ in COMMANDS.values():
        assert callable(importlib.import_module(module).main), module


def test_console_entry_runs_a_subcommand_help():
    run = subprocess.run([sys.executable, '-m', 'smartcell.cli', 'audit', '--help'], capture_output=True, text=True)
    assert run.returncode == 0 and 'verify' in run.stdout
