"""Build the optional C accelerator; all project metadata lives in pyproject.toml.

``optional=True``: without a C compiler (or Python headers) the build goes on
and sipwire uses its pure-Python parser.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "sipwire.message._speedups",
            ["src/sipwire/message/_speedups.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
