"""Errors that the CLI turns into one-line messages and exit codes."""


class MixlawInputError(ValueError):
    """Bad user input: a file, column, value or flag. The CLI prints it on one line and exits 2."""
