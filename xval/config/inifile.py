"""Reading a `config.ini` as people write it: the text, its sections and keys, their lines.

The one reader of config files (`xval.config.loader.load_config` parses through it):

- the file must be a regular file (a folder, FIFO or device is named as such), readable,
  UTF-8 text; a UTF-8 byte-order mark (Windows Notepad) is accepted, a UTF-16 or UTF-32
  one is an error saying to save as UTF-8;
- line endings may be `\\n`, `\\r\\n` (Windows) or `\\r`;
- `%` is literal (no interpolation); `;` and `#` start comment lines, and after white space
  they start a comment at the end of a line (`data_dir = data  ; my stores`), as people
  write them; `\\;` and `\\#` after white space are the characters themselves (a value
  that holds ` ;` or ` #`: `results_dir = runs \\#2`);
- every parse error names the line and the key: a key without `=`, a key before any
  section, a section or a key given twice;
- `[DEFAULT]` is refused by name (configparser would copy its keys into every section).

Values are returned as text with the line that set them, for the schema to type and check.
"""

from __future__ import annotations

import codecs
import configparser
import re
import stat
from pathlib import Path

from xval.core.errors import ConfigurationError
from xval.core.links import broken_link
from xval.core.settings import escape

__all__ = ["IniValues", "escape", "parse_ini", "read_ini"]

IniValues = dict[str, dict[str, tuple[str, int]]]
"""Section -> key -> `(text, line number)`."""

_NO_DEFAULT = "\x00no default section"
_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]*)\]")
_KEY = re.compile(r"^(?P<key>[^\s=:;#\[][^=:]*?)\s*[=:]")
# A comment at the end of a line: `;` or `#` after white space (configparser's
# `inline_comment_prefixes` rule), to the end of the line; `\;`, `\#` are no comment.
_INLINE = re.compile(r"(?<=\s)[;#].*$")
_ESCAPED = re.compile(r"(?<=\s)\\([;#])")
_WIDE_BOMS = {codecs.BOM_UTF32_LE: "UTF-32", codecs.BOM_UTF32_BE: "UTF-32",
              codecs.BOM_UTF16_LE: "UTF-16", codecs.BOM_UTF16_BE: "UTF-16"}


def _kind(path: Path) -> str:
    mode = path.stat().st_mode
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _text(path: Path) -> str:
    """The file's text, checked (see the module docstring)."""
    where = f"Config file {str(path)!r}"
    broken = broken_link(path)
    if broken:
        raise ConfigurationError(f"{where} is {broken}; point it at a config.ini.")
    if not path.exists():
        raise ConfigurationError(f"{where} does not exist.")
    if path.is_dir():
        raise ConfigurationError(f"{where} is a folder; pass the path of a config.ini file.")
    if not path.is_file():
        raise ConfigurationError(f"{where} is {_kind(path)}, not a file; pass the path of "
                                 "a config.ini file.")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigurationError(f"{where} cannot be read ({e.strerror or e}); check its "
                                 "permissions.") from None
    for bom, name in _WIDE_BOMS.items():
        if data.startswith(bom):
            raise ConfigurationError(f"{where} is {name} text; save it as UTF-8.")
    if b"\x00" in data:
        raise ConfigurationError(f"{where} holds NUL bytes: it is not a text file. Give a "
                                 "config.ini (UTF-8 text).")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ConfigurationError(f"{where}, line {line}: not UTF-8 text (byte "
                                 f"0x{data[e.start]:02x}); save the file as UTF-8.") from None


def _lines_of_keys(lines: list[str]) -> dict[tuple[str, str], int]:
    """`(section, key) -> line` of every `key = value` line (keys lower-cased, as
    configparser stores them)."""
    found: dict[tuple[str, str], int] = {}
    section = ""
    for number, line in enumerate(lines, start=1):
        if line[:1].isspace():
            continue  # a continuation line of a value
        header = _SECTION.match(line)
        if header:
            section = header["name"]
            continue
        key = _KEY.match(line)
        if key:
            found.setdefault((section, key["key"].strip().lower()), number)
    return found


def _parse_error(e: configparser.Error, where: str, lines: list[str]) -> ConfigurationError:
    """The one-line message of a configparser error: the line and the key."""
    def shown(number: int) -> str:
        return lines[number - 1].strip() if 0 < number <= len(lines) else ""

    if isinstance(e, configparser.MissingSectionHeaderError):
        return ConfigurationError(
            f"{where}, line {e.lineno}: {shown(e.lineno)!r} comes before any [section]; "
            "start the file with a section header such as [paths].")
    if isinstance(e, configparser.DuplicateSectionError):
        return ConfigurationError(f"{where}, line {e.lineno}: section [{e.section}] appears "
                                  "twice; merge the two.")
    if isinstance(e, configparser.DuplicateOptionError):
        return ConfigurationError(f"{where}, line {e.lineno}: key {e.option!r} appears twice "
                                  f"in [{e.section}]; keep one.")
    if isinstance(e, configparser.ParsingError):
        number, _ = e.errors[0]
        return ConfigurationError(
            f"{where}, line {number}: {shown(number)!r} is not `key = value`; write the key, "
            "an `=` and its value (or remove the line).")
    return ConfigurationError(f"{where}: cannot be parsed ({e}).")


def _without_comment(line: str) -> str:
    """A line without its comment at the end (`key = value ; comment` -> `key = value`),
    `\\;` and `\\#` after white space read as `;` and `#`; a comment line is kept whole
    (configparser skips it)."""
    if line.lstrip()[:1] in (";", "#"):
        return line
    return _ESCAPED.sub(r"\1", _INLINE.sub("", line)).rstrip()


def parse_ini(text: str, where: str) -> IniValues:
    """Parses config text.

    Args:
        text: the file's content.
        where: how messages name the file (`"Config file 'config.ini'"`).

    Returns:
        Section -> key -> `(value text, line)`.

    Raises:
        ConfigurationError: naming the line and the key (see the module docstring).
    """
    lines = text.splitlines()
    read = [_without_comment(line) for line in lines]
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=None,
                                       strict=True, default_section=_NO_DEFAULT)
    try:
        parser.read_string("\n".join(read) + "\n", source=where)
    except configparser.Error as e:
        raise _parse_error(e, where, lines) from None
    if "DEFAULT" in parser.sections():
        number = next((i for i, line in enumerate(lines, 1)
                       if (m := _SECTION.match(line)) and m["name"] == "DEFAULT"), 0)
        raise ConfigurationError(
            f"{where}, line {number}: [DEFAULT] is not supported (configparser would copy its "
            "keys into every section); put each key in its own section, e.g. [training].")
    keys = _lines_of_keys(lines)
    return {section: {key: (parser.get(section, key), keys.get((section, key), 0))
                      for key in parser[section]}
            for section in parser.sections()}


def read_ini(path: str | Path) -> IniValues:
    """Reads and parses a config file (see the module docstring).

    Raises:
        ConfigurationError: for a file that is missing, not a regular file, unreadable,
            not UTF-8, or not parsable, naming the line.
    """
    path = Path(path)
    return parse_ini(_text(path), f"Config file {str(path)!r}")
