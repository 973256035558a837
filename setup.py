"""The package list, found rather than written out, so that no subpackage is left out of a
wheel: every package under minifm/, and every package under kernels/ installed as
minifm.kernels (pyproject.toml's package-dir maps the folder). Everything else about the
build is in pyproject.toml; setuptools' own discovery there ([tool.setuptools.packages.find])
cannot do this, as it names a package after its folder, and would install kernels/ as a
top-level `kernels`."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["minifm", "minifm.*"])
      + ["minifm." + name for name in find_packages(include=["kernels", "kernels.*"])])
