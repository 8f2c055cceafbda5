"""Builds the C extension flappy_rl.binding from csrc/ (package metadata is in pyproject.toml)."""

import shutil

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildWithCompilerCheck(build_ext):
    """Without a C compiler, stop with one line that names it, not with a compiler traceback."""

    def build_extensions(self):
        compiler = self.compiler.compiler_so[0] if hasattr(self.compiler, "compiler_so") else None
        if compiler is not None and shutil.which(compiler) is None:
            raise SystemExit(f"error: flappy-rl compiles its C extension and needs a C compiler: "
                             f"'{compiler}' not found (install gcc, e.g. apt-get install gcc)")
        super().build_extensions()


setup(
    cmdclass={"build_ext": BuildWithCompilerCheck},
    ext_modules=[
        Extension(
            "flappy_rl.binding",
            sources=["csrc/binding.c"],
            depends=["csrc/flappy.h", "csrc/render.h"],
            include_dirs=["csrc", numpy.get_include()],
            # -ffp-contract=off: no fused multiply-add, so C and the Python twin round alike.
            extra_compile_args=["-O3", "-ffp-contract=off", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ],
)
