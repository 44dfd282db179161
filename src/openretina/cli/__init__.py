"""Command-line interface: `openretina <command> [options]`."""
