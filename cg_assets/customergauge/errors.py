"""Errors the CustomerGauge client raises. Messages never carry a secret or a token."""

from __future__ import annotations


class CustomerGaugeError(Exception):
    """Base class: anything that went wrong talking to CustomerGauge."""


class AuthenticationError(CustomerGaugeError):
    """The credentials or a fresh token were rejected; retrying will not help."""


class ApiRequestError(CustomerGaugeError):
    """The API refused the request itself (a 4xx other than 401 and 429): fix the request."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class RetriesExhaustedError(CustomerGaugeError):
    """A transient fault (429, 5xx, timeout, dropped connection, broken body) outlasted the retries."""

    def __init__(self, message: str, last_cause: str) -> None:
        super().__init__(message)
        self.last_cause = last_cause


class ApiContractError(CustomerGaugeError):
    """A well-formed response broke the contract we rely on (shape, cursor, record fields)."""


class ApiLimitError(CustomerGaugeError):
    """An answer passed one of our limits (body size, nesting depth, pages per day, a key
    past 64 bits); the message names the limit and its setting. Not retried: a server
    that sends it once will likely send it again, and each try costs the limit."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting
