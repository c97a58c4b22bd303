"""Build hook: the repository's top-level ``devices/``, ``lut/``, ``generators/`` and ``supernets/``
are copied into the wheel as package data ``sgnas/_shipped/<folder>/`` (read through
:mod:`sgnas.shipped`). Everything else is configured in pyproject.toml."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: Shipped folders and the files of each that the wheel carries.
SHIPPED = {"devices": ("*.yaml",), "lut": ("*.json",), "generators": ("*.pt",),
           "supernets": ("*.pt",)}


class BuildPyWithShipped(build_py):
    """``build_py`` that also copies the shipped folders into ``sgnas/_shipped/``."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the repository folders themselves
        for folder, patterns in SHIPPED.items():
            target = Path(self.build_lib) / "sgnas" / "_shipped" / folder
            self.mkpath(str(target))
            for pattern in patterns:
                for src in sorted((ROOT / folder).glob(pattern)):
                    self.copy_file(str(src), str(target / src.name))


setup(cmdclass={"build_py": BuildPyWithShipped})
