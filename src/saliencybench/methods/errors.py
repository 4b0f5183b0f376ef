"""The error every check of the methods package raises."""


class MethodError(ValueError):
    """An invalid method, parameter, reduction or input; the message names the culprit."""
