# Only here to map the top-level prompts/ folder to the package llmlabel.prompts; the rest is pyproject.toml.
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["llmlabel", "llmlabel.*"]) + ["llmlabel.prompts"],
    package_dir={"llmlabel.prompts": "prompts"},
)
