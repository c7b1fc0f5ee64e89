"""Allow ``python -m zapgate``."""

from zapgate.cli import main

main()
