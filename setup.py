"""Builds the C extension flappy_rl.binding from csrc/ (package metadata is in pyproject.toml)."""

import numpy
from setuptools import Extension, setup

setup(
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
