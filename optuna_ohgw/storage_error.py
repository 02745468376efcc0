"""The one error a storage raises when it cannot be opened or reached.

It lives on its own so that :mod:`optuna_ohgw.storage` (opening a storage) and
:mod:`optuna_ohgw.patient_storage` (riding out an outage) can both raise it without importing
each other; :mod:`optuna_ohgw.storage` re-exports it.
"""

from __future__ import annotations


class StorageError(RuntimeError):
    """The storage URL cannot be opened; the message says which (without secrets) and why."""
