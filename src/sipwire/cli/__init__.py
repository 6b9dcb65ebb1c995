"""The ``sipwire`` command line: a thin shell over the library."""
