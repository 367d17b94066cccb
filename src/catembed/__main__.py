"""``python -m catembed``: the ``catembed`` command."""

from catembed.cli import main

main(prog_name="catembed")
