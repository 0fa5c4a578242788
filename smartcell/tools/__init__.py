"""Command implementations behind `smartcell <command>`; each module has `main(argv) -> int`."""
