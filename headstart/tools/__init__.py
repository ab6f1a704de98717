"""Tools for measuring a server from outside: each needs an extra (``pip install -e ".[loadtest]"``)."""
