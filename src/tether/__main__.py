"""`python -m tether ...`: the same command line, and the same exit codes, as the `tether` script.

This is the form accelerate's launcher takes: `accelerate launch ... -m tether rm train ...`."""

from tether.cli.main import main

if __name__ == "__main__":
    main()
