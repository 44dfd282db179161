"""Exception classes shared across openretina.

Every error a user can cause with bad input derives from :class:`OpenRetinaError` and from the builtin
exception a caller would naturally catch (``ValueError``, ``FileNotFoundError``, ...), so both
``except OpenRetinaError`` and ``except ValueError`` work. Messages name the offending thing (session,
array, file, key), the expected and the actual value, and, where possible, what to do about it.
"""

from __future__ import annotations


class OpenRetinaError(Exception):
    """Base class of all errors raised by openretina on bad input."""


class DataShapeError(OpenRetinaError, ValueError):
    """An array has the wrong number of dimensions or a size that does not match its partner."""


class NonFiniteDataError(OpenRetinaError, ValueError):
    """A stimulus or response array contains NaN or infinite values."""


class DataFormatError(OpenRetinaError, ValueError):
    """A file or container is structured wrongly: missing key, unknown test name, empty split, ..."""


class DataFileNotFoundError(OpenRetinaError, FileNotFoundError):
    """A data file or directory that should exist does not."""


class InsufficientFramesError(OpenRetinaError, ValueError):
    """A stimulus is too short for the model's temporal receptive field (no output frame would remain)."""
