"""Build the optional C accelerators (the parser, the G.711 table look-ups); all
project metadata lives in pyproject.toml.

``optional=True``: without a C compiler (or Python headers) the build goes on
and sipwire uses its pure-Python parser and numpy look-ups.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "sipwire.message._speedups",
            ["src/sipwire/message/_speedups.c"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
        Extension(
            "sipwire.media._gather",
            ["src/sipwire/media/_gather.c"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
    ]
)
