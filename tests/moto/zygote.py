#!/usr/bin/env python3
"""Starts moto servers ready-imported, by fork (README.md, "The zygote").

A moto server's start is mostly Python importing moto, Flask and the services' models and
responses: about 1.3 of its 2 CPU-seconds, and a run of the tests starts about 30 of them. This
process imports all that once (and the fixes in fixes.py), then forks one moto server per request,
each the same `moto.server.main` that `moto_server` runs, in the requester's network namespace.

    python3 tests/moto/zygote.py SOCKET      # tests/run starts it and exports LAB_MOTO_ZYGOTE

A request is one JSON line on the Unix socket: {"argv": [...moto_server's arguments...],
"env": {...}, "log": PATH, "pid": REQUESTER (a process or a thread id)}; the answer is the server's pid, or "error: …".
The server is its own session, named moto_server, and nothing of this process's but the imports:
stdin /dev/null, stdout and stderr appended to PATH, the environment given, a random seed of its
own. This process ends with its parent (tests/run) and then stops every server it started."""
import ctypes
import json
import os
import signal
import socket
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import fixes  # noqa: E402,F401  (applies them)
import moto.server  # noqa: E402
from moto import backends  # noqa: E402
from moto.moto_api._internal import mock_random  # noqa: E402

# What Jeeves and terraform/aws reach: EC2, Route 53, S3, STS (doctor, aws_caller_identity), IAM
# (the nodes' role). Importing a service's models, responses and URLs is what its first request
# would do in a fresh moto_server; no backend is created here (backends read MOTO_* settings,
# which each server takes from its own request).
SERVICES = ["ec2", "route53", "s3", "sts", "iam"]
for service in SERVICES:
    backends.get_backend(service)
    __import__(f"moto.{service}.responses")
    __import__(f"moto.{service}.urls")
import werkzeug.serving  # noqa: E402,F401

libc = ctypes.CDLL(None, use_errno=True)
PR_SET_NAME, PR_SET_PDEATHSIG, CLONE_NEWNET = 15, 1, 0x40000000


# The MOTO_* settings a server may be given, and how each takes effect in a fork of a process
# that has imported moto without it. MOTO_ACCOUNT_ID is read at every request
# (moto/core/responses.py) and MOTO_EC2_LOAD_DEFAULT_AMIS when an EC2 backend is made
# (moto/settings.py ec2_load_default_amis, called by amis.py _load_amis): both as they are.
# MOTO_AMIS_PATH is read when moto/ec2/models/amis.py is imported (its module-level AMIS), so the
# fork reads it again as that import does. Any other is refused: it may be read at import.
SETTINGS = ("MOTO_ACCOUNT_ID", "MOTO_EC2_LOAD_DEFAULT_AMIS", "MOTO_AMIS_PATH")


def unknown_settings(env):
    return [k for k in env if k.startswith("MOTO_") and k not in SETTINGS]


def apply_settings():
    if "MOTO_AMIS_PATH" in os.environ:
        from moto.ec2.models import amis
        with open(os.environ["MOTO_AMIS_PATH"], encoding="utf-8") as f:
            amis.AMIS = json.load(f)


def serve(request, netns):
    """In the forked child: becomes the moto server the request asks for. Never returns."""
    code = 1
    try:
        os.setsid()
        # Entering one's own namespace needs CAP_SYS_ADMIN too: only another is entered (the
        # quick tests run without root, in the machine's).
        same = os.fstat(netns).st_ino == os.stat("/proc/self/ns/net").st_ino
        if not same and libc.setns(netns, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns to the requester's network namespace")
        os.close(netns)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        os.environ.update(request.get("env", {}))
        apply_settings()
        libc.prctl(PR_SET_NAME, b"moto_server", 0, 0, 0)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        # Each server its own ids: the seed the fork copied would give every lab the same ones.
        mock_random.seed()
        sys.argv = ["moto_server", *request["argv"]]
        moto.server.main(request["argv"])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main():
    path = sys.argv[1]
    # Ends with tests/run, whatever way that ends (its trap stops it first when it can).
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    started = []

    def stop(*_):
        # Only those still ours: a server stopped long ago may have left its pid to another
        # program, but a pid whose parent is this process is one of its servers.
        for pid in started:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ours = int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid()
                if ours:
                    os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError, IndexError):
                pass
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # The servers are reaped by the kernel: a stopped one leaves no zombie answering kill -0.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(16)
    print(f"moto zygote: ready on {path} (pid {os.getpid()})", flush=True)
    while True:
        conn, _ = listener.accept()
        with conn:
            try:
                request = json.loads(conn.makefile("r").readline())
                unknown = unknown_settings(request.get("env", {}))
                if unknown:
                    raise ValueError(f"the zygote cannot apply {', '.join(unknown)}: start moto_server")
                # The requester waits for the answer, so its namespace is there to open.
                netns = os.open(f"/proc/{int(request['pid'])}/ns/net", os.O_RDONLY)
            except (ValueError, KeyError, OSError) as e:
                conn.sendall(f"error: {e}\n".encode())
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                conn.close()
                serve(request, netns)
            os.close(netns)
            started[:] = [p for p in started if os.path.exists(f"/proc/{p}")] + [pid]
            conn.sendall(f"{pid}\n".encode())


if __name__ == "__main__":
    main()
