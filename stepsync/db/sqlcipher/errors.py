"""Errors of the SQLCipher backend; messages name the variable or file, never a value."""

from django.core.exceptions import ImproperlyConfigured


class DatabaseKeyError(ImproperlyConfigured):
    """The database key is missing, malformed or does not open the file."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
