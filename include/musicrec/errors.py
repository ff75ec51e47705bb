"""Errors that mean the input is unusable: retrying the same run cannot help."""


class InputError(ValueError):
    """A library, metadata file or parameter that the pipeline cannot work with; the message names it."""
