"""Builds the package with its gRPC stubs generated from the repository's `proto/` (the one
source of the API), so the stubs always match the server they were built with."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PROTO = HERE.parent.parent / "proto"
FILES = ["rampart/v1/rampart.proto"]


class BuildWithStubs(build_py):
    """`build_py`, then `rampart/v1/rampart_pb2{,_grpc}.py` (and `.pyi`) from `proto/`."""

    def run(self) -> None:
        super().run()
        from grpc_tools import protoc

        if not (PROTO / FILES[0]).exists():
            raise RuntimeError(f"{PROTO / FILES[0]} not found: build from a rampart checkout")
        out = Path(self.build_lib)
        include = importlib.resources.files("grpc_tools") / "_proto"
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO}",
            f"-I{include}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *(str(PROTO / f) for f in FILES),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {FILES}")
        (out / "rampart" / "v1" / "__init__.py").write_text('"""Generated from proto/rampart/v1."""\n')


setup(cmdclass={"build_py": BuildWithStubs})
