"""Packaging hook: the repository's top-level ``conf/`` ships inside the package as ``srlab/conf``.

Hydra needs the configs beside the code once srlab is installed (``pip install .`` or from git);
the repository keeps them at the top, where users look for them. ``srlab.config.CONFIG_DIR`` reads
the packaged copy when it exists, else ``conf/`` of the checkout. Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithConf(build_py):
    """``build_py`` that also copies ``conf/`` to ``<build>/srlab/conf`` (wheels and non-editable installs)."""

    def run(self) -> None:
        super().run()
        if not self.editable_mode:  # an editable install reads conf/ of the checkout
            shutil.copytree("conf", Path(self.build_lib) / "srlab" / "conf", dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithConf})
