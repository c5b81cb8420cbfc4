"""Run the command-line interface: ``python -m lossdoctor``."""

from lossdoctor.cli import main

if __name__ == "__main__":
    main()
