"""Typed serving errors in KServe's style: the type decides the HTTP status, the message tells the client
what to fix. Runtime-neutral (no TorchServe imports); the adapter turns them into responses.
"""

from __future__ import annotations


class ServingError(Exception):
    """An error with an HTTP status and a message that is safe to show to the client."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_json(self) -> dict:
        """The error body every protocol answers with (OIP v2 clients read `error`)."""
        return {"code": self.status, "type": type(self).__name__, "error": self.message}


class InvalidInput(ServingError):
    """The request cannot be served as sent: the client must change it."""

    status = 400


class InferenceError(ServingError):
    """The request was valid but the model failed on it: our fault, not the client's."""

    status = 500
