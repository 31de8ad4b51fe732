"""Hostile programs are contained: each run ends by its limit, and the machine is unchanged.

The bwrap sandbox runs all of them (the tests skip, saying why, where bubblewrap cannot run).
The ``none`` provider only runs the ones that are safe outside a sandbox (a loop, a big
allocation, a flood of output, an early exit): it is for trusted code.

Each program is the program *and* its tests: the tests assert, from inside, that the attack
failed, so a working attack is a miss; the test here then checks the machine from outside
(files, processes, a server, the environment).
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sandboxes import bwrap_or_skip, name_self, sandbox_named, token, wait_gone, within_limit

from pytest_llmeval.scoring.code import Job, Limits, Verdict

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def bwrap():
    return bwrap_or_skip()


@pytest.fixture(params=["bwrap", "none"])
def any_sandbox(request):
    return sandbox_named(request.param)


def attack_fails(sandbox, program: str, tests: str = "assert True", limits: Limits | None = None) -> Verdict:
    """Run a hostile ``program`` whose ``tests`` assert, from inside, that its attack failed: a
    pass. A miss means the attack worked (or the run broke): the test fails with the reason."""
    verdict = sandbox.run(Job(program, tests, None, limits or Limits()))
    assert verdict.passed, verdict.reason
    return verdict


def test_a_fork_bomb_is_contained(bwrap):
    name = token()
    program = name_self(name) + (
        "import os, time\n"
        "while True:\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(600)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    limits = Limits(timeout=3)
    verdict = bwrap.run(Job(program, "", None, limits))
    assert verdict.status == "timeout"
    assert within_limit(verdict.duration_s, limits)
    assert wait_gone(name) == []


def test_children_that_outlive_the_program_are_killed_with_the_run(bwrap):
    """A daemon (fork, new session, fork again) that would sleep ten minutes dies when the run ends."""
    name = token()
    program = name_self(name) + (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(600)\n"
        "    os._exit(0)\n"
        "time.sleep(0.5)\n"
    )
    attack_fails(bwrap, program)
    assert wait_gone(name) == []


def test_allocating_ten_gigabytes_is_a_memory_miss(any_sandbox):
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    verdict = any_sandbox.run(Job("data = bytearray(10 * 1024 ** 3)\n", "", None, Limits(memory_mb=512)))
    assert verdict.status == "memory" and verdict.reason.startswith("killed: memory limit 512 MiB")
    grow = any_sandbox.run(Job("chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024 * 1024))\n", "", None, Limits(memory_mb=512)))
    assert grow.status == "memory"
    # the largest child this process ever had stayed under the limit (ru_maxrss is in KiB)
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    assert peak < 600 * 1024 or before >= 600 * 1024


def test_an_infinite_loop_times_out(any_sandbox):
    limits = Limits(timeout=2)
    verdict = any_sandbox.run(Job("while True:\n    pass\n", "", None, limits))
    assert verdict.status == "timeout" and verdict.reason == "timed out after 2 s"
    assert within_limit(verdict.duration_s, limits)


def test_writes_outside_the_temporary_directory_do_not_reach_the_machine(bwrap, tmp_path):
    name = token()
    targets = [
        Path.home() / f"{name}.txt",  # the real HOME
        ROOT / f"{name}.txt",  # the project
        ROOT / "tests" / f"{name}.txt",
        tmp_path / f"{name}.txt",  # a directory that exists on the machine
        Path("/tmp") / f"{name}.txt",  # the machine's /tmp
        Path("/etc") / f"{name}.txt",
        Path("/usr/lib") / f"{name}.txt",
    ]
    program = (
        "import os\n"
        f"targets = {[str(t) for t in targets]!r}\n"
        "written = []\n"
        "for path in targets:\n"
        "    try:\n"
        "        os.makedirs(os.path.dirname(path), exist_ok=True)\n"
        "        with open(path, 'w') as fh:\n"
        "            fh.write('pwned')\n"
        "        written.append(path)\n"
        "    except OSError:\n"
        "        pass\n"
        "home = os.path.expanduser('~')\n"
        "open(os.path.join(home, 'inside.txt'), 'w').write('fine')\n"
    )
    # Inside, /tmp is the run's own tmpfs: writing there is allowed and vanishes with the run.
    tests = "assert [p for p in written if not p.startswith('/tmp/')] == [], written\nassert home == '/tmp'"
    attack_fails(bwrap, program, tests)
    assert [t for t in targets if t.exists()] == []
    assert not (Path.home() / "inside.txt").exists()


def test_environment_secrets_do_not_reach_the_program(bwrap, monkeypatch):
    monkeypatch.setenv("LLMEVAL_TEST_SECRET", "s3cr3t-value")
    program = (
        "import os, glob\n"
        "leaks = [k for k in os.environ if 'SECRET' in k or 'KEY' in k or 'TOKEN' in k]\n"
        "for path in glob.glob('/proc/*/environ'):\n"
        "    try:\n"
        "        if b'LLMEVAL_TEST_SECRET' in open(path, 'rb').read():\n"
        "            leaks.append(path)\n"
        "    except OSError:\n"
        "        pass\n"
        "print(sorted(os.environ))\n"
    )
    verdict = attack_fails(bwrap, program, "assert leaks == [], leaks")
    assert "s3cr3t" not in verdict.output_tail


def test_a_server_on_the_machine_loopback_is_unreachable(bwrap):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        program = (
            "import socket\nreached = []\n"
            f"for host in ('127.0.0.1', 'localhost', '::1', '1.1.1.1'):\n"
            "    try:\n"
            f"        socket.create_connection((host, {port}), timeout=2).close()\n"
            "        reached.append(host)\n"
            "    except OSError:\n"
            "        pass\n"
        )
        attack_fails(bwrap, program, "assert reached == [], reached")
        assert accepted == []
        # the server itself works: the machine can reach it
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        stop.set()
        thread.join(5)
        server.close()


def test_killing_the_parent_and_other_processes_fails(bwrap):
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        program = (
            "import os, signal\nalive = []\n"
            f"for pid in (os.getppid(), 1, {os.getpid()}, {victim.pid}):\n"
            "    try:\n"
            "        os.kill(pid, signal.SIGKILL)\n"
            "    except OSError:\n"
            "        pass\n"
            "try:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n"
        )
        attack_fails(bwrap, program)
        assert victim.poll() is None  # still running
    finally:
        victim.kill()
        victim.wait()


def test_deleting_files_by_absolute_path_fails(bwrap, tmp_path):
    canary = tmp_path / "canary.txt"
    canary.write_text("still here")
    program = (
        "import os, shutil\n"
        f"for path in ({str(canary)!r}, {str(ROOT / 'pyproject.toml')!r}, '/python/lib/python3.{sys.version_info[1]}/os.py'):\n"
        "    try:\n        os.remove(path)\n    except OSError:\n        pass\n"
        f"for tree in ({str(tmp_path)!r}, '/python', '/usr/lib', '/'):\n"
        "    shutil.rmtree(tree, ignore_errors=True)\n"
        "import json\n"  # the standard library is still there
    )
    attack_fails(bwrap, program, "assert json.loads('1') == 1")
    assert canary.read_text() == "still here"
    assert (ROOT / "pyproject.toml").is_file()


def test_a_gigabyte_of_output_is_read_and_dropped(any_sandbox):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    program = "import os\nchunk = b'x' * (1 << 20)\nfor _ in range(1024):\n    os.write(1, chunk)\n"
    limits = Limits(timeout=60)
    verdict = any_sandbox.run(Job(program, "assert True", None, limits))
    # On a quiet machine this takes a few seconds and passes; a loaded one may reach the limit.
    assert verdict.status in ("passed", "timeout"), verdict.reason
    assert within_limit(verdict.duration_s, limits)
    assert len(verdict.output_tail) <= limits.output_tail
    if verdict.passed:
        assert verdict.output_bytes == 1 << 30 and verdict.truncated
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 100 * 1024, grown_kib  # the test process kept only the tail


def test_filling_the_disk_stops_at_the_tmpfs_size(bwrap):
    program = (
        "written = 0\n"
        "try:\n"
        "    for i in range(1000):\n"
        "        with open(f'f{i}', 'wb') as fh:\n"
        "            fh.write(b'x' * (8 << 20))\n"
        "        written += 8\n"
        "except OSError:\n"
        "    pass\n"
    )
    attack_fails(bwrap, program, "assert written <= 64, written", Limits(disk_mb=64, file_mb=16))


def test_the_root_file_system_is_read_only_and_bare(bwrap):
    program = (
        "import os\n"
        "top = sorted(os.listdir('/'))\n"
        "try:\n    open('/evil', 'w')\n    wrote = True\nexcept OSError:\n    wrote = False\n"
        "seen = [p for p in ('/root', '/home', '/work', '/etc/passwd', '/etc/shadow', '/usr/bin', '/var') if os.path.exists(p)]\n"
        "import subprocess\n"
        "try:\n    subprocess.run(['ls'])\n    ran = True\nexcept OSError:\n    ran = False\n"
    )
    tests = "assert not wrote and seen == [] and not ran, (wrote, seen, ran)\nassert set(top) <= {'dev', 'lib', 'lib32', 'lib64', 'proc', 'python', 'tmp', 'usr'}, top"
    attack_fails(bwrap, program, tests)


@pytest.mark.parametrize("how", ["sys.exit(0)", "os._exit(0)", "quit()", "os.kill(os.getpid(), 9)"])
def test_exiting_with_status_0_before_the_tests_is_a_miss(any_sandbox, how):
    verdict = any_sandbox.run(Job(f"import os, sys\n{how}\n", "assert False"))
    assert not verdict.passed and verdict.status in ("exited", "killed")


def test_a_forged_report_without_the_marker_is_ignored(any_sandbox):
    """The program finds the status channel (its number is in sys.argv) and claims a pass."""
    program = (
        "import os, sys\n"
        "fd = int(sys.argv[-1])\n"
        "for marker in ('', 'x' * 32, sys.argv[-2]):\n"
        "    os.write(fd, (marker + ' started\\n' + marker + ' done {\"status\": \"passed\"}\\n').encode())\n"
        "os._exit(0)\n"
    )
    verdict = any_sandbox.run(Job(program, "assert False"))
    assert verdict.status == "exited" and not verdict.passed
