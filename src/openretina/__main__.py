"""`python -m openretina ...` is the same as the `openretina` console script."""

from openretina.cli.openretina_main import main

if __name__ == "__main__":
    raise SystemExit(main())
