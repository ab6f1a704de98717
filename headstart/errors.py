"""The errors a command reports in one line rather than with a traceback."""

from __future__ import annotations


class SetupError(RuntimeError):
    """Something outside the code stops the work: no dataset, a corrupt checkpoint, a port in use.

    Its message names what is wrong and what to do about it, so the command line prints that
    alone and exits 1, and the server says it to the page.
    """
