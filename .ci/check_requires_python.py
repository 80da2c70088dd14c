"""Checks that `requires-python` in pyproject.toml admits exactly the Pythons that the pinned
versions of constraints.txt admit: its lowest version is the lowest that every pin installs
on. Each pin's own `Requires-Python` is read from the metadata of the installed distribution
(no network): run it in the environment the pins were frozen from (`make lint` does).

Exit status 0 when they agree; 1, with what differs and the fix, when they do not.
"""

import argparse
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
# The Python releases to compare over: 3.x, with x from 6 to 20.
MINORS = [Version(f"3.{minor}") for minor in range(6, 21)]


def pins(path: Path) -> dict[str, Version]:
    """`name==version` lines of a constraints file (comments and blank lines skipped)."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)", line)
        if match:
            found[canonicalize_name(match.group(1))] = Version(match.group(2))
    return found


def lowest(specifier: SpecifierSet, minors: list[Version]) -> Version | None:
    """The lowest 3.x release a specifier admits (3.x.0 and later patch releases alike)."""
    for minor in minors:
        if any(specifier.contains(f"{minor}.{patch}", prereleases=True) for patch in range(30)):
            return minor
    return None


def main(argv: list[str] | None = None) -> int:
    """Runs the check; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    parser.add_argument("--constraints", type=Path, default=ROOT / "constraints.txt")
    args = parser.parse_args(argv)
    project = tomllib.loads(args.pyproject.read_text())["project"]
    declared = SpecifierSet(project["requires-python"])
    needs: dict[str, Version] = {}
    unchecked = []
    for name, version in sorted(pins(args.constraints).items()):
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            unchecked.append(name)
            continue
        installed = Version(dist.version)
        if Version(installed.public) != version:
            print(f"constraints.txt pins {name}=={version} but {installed} is installed: "
                  "install with `make .venv/.installed-test` (or regenerate constraints.txt) "
                  "and run this again.")
            return 1
        floor = lowest(SpecifierSet(dist.metadata.get("Requires-Python") or ""), MINORS)
        if floor is None:
            print(f"{name}=={version} admits no Python 3.6-3.20 (Requires-Python "
                  f"{dist.metadata.get('Requires-Python')!r}).")
            return 1
        needs[name] = floor
    required = max(needs.values())
    direct = {canonicalize_name(Requirement(d).name) for d in project["dependencies"]}
    binding = sorted(needs, key=lambda name: (name not in direct, name))
    binding = [name for name in binding if needs[name] == required]
    floor = lowest(declared, MINORS)
    print(f"requires-python {declared}: lowest {floor}. The {len(needs)} installed pins of "
          f"constraints.txt need Python >= {required}: {len(binding)} of them, "
          f"{', '.join(binding[:10])}{', ...' if len(binding) > 10 else ''}; "
          f"{len(unchecked)} pin(s) not installed here, not checked.")
    if floor != required:
        print(f"error: requires-python {declared!s} should admit Python {required} and "
              f"nothing older: set requires-python = \">={required}\" in pyproject.toml.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
