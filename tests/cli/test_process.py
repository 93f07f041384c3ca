"""The `adfd` executable's process settings: glibc's allocator, and the quick exit."""

from __future__ import annotations

import platform
import subprocess
import sys

from adfd_cli.process import keep_freed_memory


def test_allocator_settings_apply_exactly_where_the_c_library_is_glibc():
    assert keep_freed_memory() is (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc")


def test_quick_exit_keeps_the_exit_code_buffered_output_and_atexit_handlers(tmp_path):
    marker = tmp_path / "cleaned"
    code = (
        "import atexit, sys\n"
        "from adfd_cli.process import quick_exit\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('done'))\n"
        "sys.stdout.write('x' * 100_000)\n"  # held in the buffer of a pipe until flushed
        "sys.stderr.write('last words')\n"
        "quick_exit(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 3
    assert done.stdout == "x" * 100_000 and done.stderr == "last words"
    assert marker.read_text() == "done"

