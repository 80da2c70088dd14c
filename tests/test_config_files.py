"""Config files as people write them (xval.config.inifile, issue 37 point 3): Windows
encodings and line endings read, every parse error names its line and key, `[DEFAULT]`
refused by name, `~` and environment variables expanded in paths, and `python -m xval
config` failing exactly where an experiment would."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from xval.config.loader import load_config
from xval.core.errors import ConfigurationError


def _write(tmp_path, data, name="config.ini"):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def test_config_with_bom_and_crlf_line_endings_loads(tmp_path):
    """A file saved by Windows Notepad: a UTF-8 byte-order mark and CRLF endings."""
    path = _write(tmp_path, b"\xef\xbb\xbf[paths]\r\ndata_dir = stores\r\n"
                            b"[training]\r\nepochs = 7\r\noptimizer = sgd\r\n")
    config = load_config(path)
    assert config.data_dir == tmp_path / "stores"
    assert config.training["epochs"] == 7 and config.training["optimizer"] == "sgd"


def test_config_with_old_mac_line_endings_loads(tmp_path):
    config = load_config(_write(tmp_path, b"[training]\repochs = 4\r"))
    assert config.training["epochs"] == 4


@pytest.mark.parametrize(("text", "line", "needle"), [
    ("[paths]\ndata_dir\n", 2, "'data_dir' is not `key = value`"),
    ("data_dir = x\n[paths]\n", 1, "comes before any [section]"),
    ("[training]\nepochs = 2\n\nepochs = 3\n", 4, "key 'epochs' appears twice in [training]"),
    ("[paths]\ndata_dir = a\n[paths]\nresults_dir = b\n", 3, "section [paths] appears twice"),
    ("[training]\nepochs = 2\nepoch = 3\n", 3, "Unknown key 'epoch'"),
    ("[training]\n\nepochs = many\n", 3, "epochs"),
    ("[paths\ndata_dir = a\n", 1, "[paths"),
])
def test_config_parse_errors_name_the_line_in_one_line(tmp_path, text, line, needle):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigurationError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "\n" not in message, message
    assert f"line {line}" in message and needle in message, message
    assert str(path) in message


def test_default_section_is_refused_by_name(tmp_path):
    path = _write(tmp_path, "[DEFAULT]\nepochs = 3\n[paths]\ndata_dir = data\n")
    with pytest.raises(ConfigurationError, match=r"line 1: \[DEFAULT\] is not supported"):
        load_config(path)


def test_paths_expand_environment_variables_and_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XVAL_TEST_DATA", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = _write(tmp_path, "[paths]\ndata_dir = $XVAL_TEST_DATA/stores\n"
                            "results_dir = ~/results\n")
    config = load_config(path)
    assert config.data_dir == tmp_path / "elsewhere" / "stores"
    assert config.results_dir == tmp_path / "home" / "results"
    _write(tmp_path, "[paths]\ndata_dir = ${XVAL_TEST_DATA}/s\n")
    assert load_config(path).data_dir == tmp_path / "elsewhere" / "s"


def test_paths_with_an_unset_variable_are_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("XVAL_UNSET_VARIABLE", raising=False)
    path = _write(tmp_path, "[paths]\ndata_dir = $XVAL_UNSET_VARIABLE/data\n")
    with pytest.raises(ConfigurationError, match="XVAL_UNSET_VARIABLE is not set"):
        load_config(path)


@pytest.mark.parametrize(("make", "needle"), [
    (lambda p: os.mkfifo(p), "is a FIFO"),
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: p.symlink_to(p.parent / "nowhere"), "dangling link"),
    (lambda p: p.write_bytes("[paths]\n".encode("utf-16")), "UTF-16"),
    (lambda p: p.write_bytes(b"[paths]\ndata_dir = caf\xe9\n"), "line 2: not UTF-8"),
    (lambda p: p.write_bytes(b"\x00\x01\x02garbage"), "NUL bytes"),
])
def test_config_files_that_are_not_text_say_what_they_are(tmp_path, make, needle):
    path = tmp_path / "config.ini"
    make(path)
    with pytest.raises(ConfigurationError, match=needle):
        load_config(path)


def _config_command(tmp_path, *args, env=None):
    full = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "torch", **(env or {})}
    return subprocess.run([sys.executable, "-m", "xval", "config", *args], cwd=tmp_path,
                          capture_output=True, text=True, env=full, timeout=300)


@pytest.mark.parametrize("target", ["missing", "binary", "folder"])
def test_config_command_with_an_unreadable_xval_config_fails_like_an_experiment(tmp_path,
                                                                                target):
    path = tmp_path / "chosen.ini"
    if target == "binary":
        path.write_bytes(os.urandom(256) + b"\x00")
    elif target == "folder":
        path.mkdir()
    proc = _config_command(tmp_path, env={"XVAL_CONFIG": str(path)})
    assert proc.returncode == 2, proc.stdout[-500:]
    assert "[training]" not in proc.stdout  # no package defaults printed as if all were well
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "chosen.ini" in errors[0], proc.stderr


def test_config_command_with_a_broken_project_config_fails(tmp_path):
    (tmp_path / "config.ini").write_text("[trainng]\nepochs = 3\n")
    proc = _config_command(tmp_path)
    assert proc.returncode == 2 and "Unknown section 'trainng'" in proc.stderr, proc.stderr
    assert "[training]" not in proc.stdout


# -- issue 59: a comment at the end of a line ------------------------------------------------

@pytest.mark.parametrize(("line", "expected"), [
    ("data_dir = stores ; my stores", "stores"),       # the issue's `data = data ; my data`
    ("data_dir = stores   # my stores", "stores"),
    ("data_dir = stores\t;tab, then a comment", "stores"),
    (r"data_dir = runs \#2", "runs #2"),                 # escaped: the characters themselves
    (r"data_dir = runs \;2 ; a comment", "runs ;2"),
])
def test_config_comment_at_the_end_of_a_line_is_no_part_of_the_value(tmp_path, line,
                                                                     expected):
    config = load_config(_write(tmp_path, f"[paths] ; where things are\n{line}\n"
                                          "[training]\nepochs = 7  # seven\n"))
    assert config.data_dir == tmp_path / expected
    assert config.training["epochs"] == 7


def test_config_semicolon_or_hash_inside_a_value_is_kept(tmp_path):
    """Only `;` or `#` after white space starts a comment (configparser's own rule for
    inline comments): `a;b#c` is a value."""
    config = load_config(_write(tmp_path, "[paths]\ndata_dir = a;b#c\n"))
    assert config.data_dir == tmp_path / "a;b#c"


def test_config_written_with_a_hash_in_a_value_reads_back_whole(tmp_path):
    """What the package writes (`init`, `config --defaults`) escapes ` #` and ` ;`."""
    from xval.config.schema.render import render

    text = render({"paths": {"data_dir": "runs #2 ; final"}})
    assert r"data_dir = runs \#2 \; final" in text
    assert load_config(_write(tmp_path, text)).data_dir == tmp_path / "runs #2 ; final"


@pytest.mark.parametrize("value", ["%(HOME)s and 100%", "#first", ";first", "a;b #c ;d",
                                   'x"""+str(open("PWNED","w"))+"""', "back\\slash\\",
                                   "nul\x00", "\u202eright-to-left\u200f", "x" * 1000])
def test_config_written_reads_back_every_value_as_given(value):
    """`render` (what `init` writes) escapes what would start a comment, a value's first `;`
    or `#` too (it read back empty); `%` is literal (no interpolation to escape)."""
    from xval.config.inifile import parse_ini
    from xval.config.schema.render import render

    text = render({"paths": {"data_dir": value}})
    assert parse_ini(text, "x")["paths"]["data_dir"][0] == value


@pytest.mark.parametrize("value", ["two\nlines", "[section]\nkey = 1", "a\u2028b", " lead",
                                   "trail ", "a \\#b"])
def test_config_value_that_cannot_be_held_is_refused_when_written(value):
    """A line break (any that `str.splitlines` takes), white space at an end, or a
    backslash before `#` after white space would read back as something else (a new key,
    a shorter value): `render` refuses it naming the key, writing nothing."""
    from xval.config.schema.render import render

    with pytest.raises(ConfigurationError, match=r"\[paths\] data_dir = .*: config.ini "
                                                 r"cannot hold this value"):
        render({"paths": {"data_dir": value}})


@pytest.mark.parametrize("line", ['data_dir = "data" ; quoted', "data_dir = 'data'",
                                  'backend = "torch"'])
def test_config_value_in_quotes_is_refused_saying_so(tmp_path, line):
    """config.ini keeps quotes as part of a value (issue 64: `data_dir = "data"` looked for a
    folder named `"data"` and advised building a store): the error says the value is quoted
    and gives the line without them."""
    section = "backend" if line.startswith("backend") else "paths"
    key, _, value = line.partition(" = ")
    bare = value.split(" ;")[0].strip("'\"")
    with pytest.raises(ConfigurationError, match=rf"line 2: the value is in quotes, which "
                                                 rf"config.ini keeps as part of it; write "
                                                 rf"{key} = {bare} \(no quotes\)"):
        load_config(_write(tmp_path, f"[{section}]\n{line}\n"))
    assert load_config(_write(tmp_path, '[paths]\ndata_dir = my "best" data\n')).data_dir \
        == tmp_path / 'my "best" data'  # quotes inside a value are its own
