"""Run the command-line interface: ``python -m lossdoctor``."""

from lossdoctor.cli import console

if __name__ == "__main__":
    console()
