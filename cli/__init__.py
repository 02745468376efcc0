"""The ``ohgw-optuna`` command line: a thin shell over :mod:`optuna_ohgw`."""
