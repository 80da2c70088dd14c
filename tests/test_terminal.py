"""Output to files and pipes: no bar redraws, and each line written as it is printed."""

import io
import subprocess
import sys

from xval.core.terminal import is_terminal


def test_is_terminal_false_for_files_pipes_and_closed_streams(tmp_path):
    assert not is_terminal(io.StringIO())
    with open(tmp_path / "log.txt", "w") as f:
        assert not is_terminal(f)
    closed = open(tmp_path / "closed.txt", "w")
    closed.close()
    assert not is_terminal(closed)
    assert not is_terminal(object())


def test_a_pipe_receives_each_line_while_the_command_still_runs():
    # Without line buffering, 'first' would wait in the child's 8 KB buffer until it exits
    # (after 60 s), and readline() would not return before the child is killed.
    code = ("import time; from xval.core.terminal import line_buffered_output; "
            "line_buffered_output(); print('first'); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "first\n"
        assert child.poll() is None  # still running: the line came before the exit
    finally:
        child.kill()
        child.wait()
