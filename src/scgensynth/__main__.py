"""``python -m scgensynth``: the command line."""

from scgensynth.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
