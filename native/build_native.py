"""cffi build script (API mode): compiles native/vemu.c into emulator._native.

Run by setuptools through ``setup.py``'s ``cffi_modules`` at install time. The C sources are
found relative to this file. ``VEMU_CFLAGS`` adds compiler flags (the CI's sanitizer build
sets ``-fsanitize=address,undefined``), ``VEMU_LDFLAGS`` linker flags.
"""
import os
import shlex

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _rel(path):
    # setuptools wants sources relative to the project root when it can have them
    try:
        return os.path.relpath(path, os.getcwd()) if os.getcwd() == ROOT else path
    except ValueError:
        return path


ffibuilder = FFI()
with open(os.path.join(HERE, "vemu_cdef.h"), encoding="utf-8") as f:
    ffibuilder.cdef(f.read())

ffibuilder.set_source(
    "emulator._native",
    '#include "vemu.h"',
    sources=[_rel(os.path.join(HERE, "vemu.c"))],
    include_dirs=[HERE],
    libraries=["m"],
    extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    + shlex.split(os.environ.get("VEMU_CFLAGS", "")),
    extra_link_args=shlex.split(os.environ.get("VEMU_LDFLAGS", "")),
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=os.path.join(ROOT, "build"), verbose=True)
