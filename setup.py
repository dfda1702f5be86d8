"""Build configuration beyond pyproject.toml: the optional native record loop.

``mysqlwire/capture/_walk.c`` (with ``_walk_ng.c`` and ``_walk_lane.c``) is built when a C compiler and the Python
headers are present; without them the install still succeeds and the reader
uses its pure-Python loop (``mysqlwire.capture.reader.NATIVE`` says which).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "mysqlwire.capture._walk",
            [
                "mysqlwire/capture/_walk.c",
                "mysqlwire/capture/_walk_ng.c",
                "mysqlwire/capture/_walk_lane.c",
            ],
            depends=["mysqlwire/capture/_walk.h"],
            optional=True,
        )
    ]
)
