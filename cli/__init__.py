"""The ``stackcheck`` command line (``stackcheck_cli.main:main``), above the library.

Its subcommands come from entry points: ``stackcheck.commands`` (top-level commands such as
``report``) and ``stackcheck.lab_commands`` (``stackcheck lab k8s-build``, ``cleanup``, ...).
"""
