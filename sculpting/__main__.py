"""``python -m sculpting <command> ...``: train and fit from the command line (see ``--help``)."""

from sculpting.infrastructure.cli import main

if __name__ == "__main__":
    main()
