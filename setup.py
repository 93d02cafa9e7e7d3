# Only the cffi build lives here (cffi cannot yet be declared in pyproject.toml alone);
# everything else is in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["native/build_native.py:ffibuilder"])
