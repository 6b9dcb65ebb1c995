"""Transaction users: the sans-I/O cores of user agents and servers."""
