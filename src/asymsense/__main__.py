"""`python -m asymsense` runs the command line (same as the `asymsense` script)."""

from asymsense.cli import main

if __name__ == "__main__":
    main()
