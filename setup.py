"""Only the C part of the build; everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[
    # optional: without a compiler casreg installs anyway and uses numpy (casreg/objects/kernels.py)
    Extension("casreg.objects._kernels", ["casreg/objects/_kernels.c"], optional=True,
              extra_compile_args=["-O3"]),
])
