#!/usr/bin/env -S python3 -S
"""Runs the runner-side stand-ins (kubectl, helm) in processes forked ready-imported (README.md,
"The server"); tests/run starts it and exports its socket as LAB_STANDIN_SERVER.

    python3 -S tests/standins/server.py SOCKET

A call of the stand-in client (client.c, built as kubectl and helm) connects and sends its stdin,
stdout and stderr (SCM_RIGHTS), then its tool name, working directory, arguments and environment.
This process forks; the fork becomes that call: its own session, the client's descriptors as its
0, 1 and 2, its directory, arguments and environment, then the same script python3 -S would run,
to its end. When the fork ends this process answers the client with how it ended ("exit N",
"signal N"), as waitpid tells it. A client that goes away (killed by Jeeves' deadline or an
interrupt) closes its connection, and its fork kills itself and what it started.

What is imported here, before any fork, is what the scripts import and holds no state of a call:
the standard library's modules and PyYAML. The stand-ins' own modules (common.py, which reads
LAB_STANDIN_* when imported) are imported in each fork, from their cached bytecode."""
import ctypes
import os
import selectors
import signal
import socket
import struct
import sys
import threading

import base64, copy, datetime, fcntl, hashlib, json, random, re, site, ssl, subprocess  # noqa: E401,F401
import tempfile, time, traceback  # noqa: E401,F401

sys.path.extend(p for p in site.getsitepackages() if p not in sys.path)
import yaml  # noqa: E402,F401

LIBC = ctypes.CDLL(None, use_errno=True)
HERE = os.path.dirname(os.path.realpath(__file__))
TOOLS = ("kubectl", "helm")
CODE = {tool: compile(open(f"{HERE}/{tool}").read(), f"{HERE}/{tool}", "exec") for tool in TOOLS}


def call(conn):
    """In the fork: becomes the client's call of a stand-in. Never returns."""
    try:
        # The client's network namespace (a lab slot's: the tunnel listens on its loopback). Entering
        # one's own needs CAP_SYS_ADMIN too, so only another is entered.
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        client_pid = struct.unpack("3i", creds)[0]
        client = os.path.realpath(f"/proc/{client_pid}/exe")
        netns = f"/proc/{client_pid}/ns/net"
        if os.stat(netns).st_ino != os.stat("/proc/self/ns/net").st_ino:
            with open(netns) as ns:
                if LIBC.setns(ns.fileno(), 0x40000000) != 0:  # CLONE_NEWNET
                    raise OSError(ctypes.get_errno(), f"setns {netns}")
        head, fds, _, _ = socket.recv_fds(conn, 4, 3)
        (size,) = struct.unpack("=I", head)
        data = bytearray()
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                os._exit(1)
            data += chunk
        fields = bytes(data).split(b"\0")[:-1]
        tool, cwd, count = fields[0].decode(), fields[1], int(fields[2])
        args, env = fields[3:3 + count], fields[3 + count:]
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(cwd)
        os.environb.clear()
        for entry in env:
            key, _, value = entry.partition(b"=")
            os.environb[key] = value
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    except BaseException:
        traceback.print_exc()
        os._exit(1)

    def client_gone():
        # The client sends nothing more: this read ends only when it closes (exits or is killed).
        try:
            conn.recv(1)
        except OSError:
            pass
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=client_gone, daemon=True).start()
    script = f"{HERE}/{tool}"
    sys.argv = [script, *(os.fsdecode(a) for a in args)]
    code = 0
    try:
        # `__client__`: the program Jeeves ran, which helm's stand-in must not take for the real
        # helm it renders charts with.
        exec(CODE[tool], {"__name__": "__main__", "__file__": script, "__client__": client,
                          "__builtins__": __builtins__})
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        sys.stderr.flush()
        # As python3 does on an uncaught KeyboardInterrupt: it ends by SIGINT.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        pass
    os._exit(code & 0xFF)


def main():
    path = sys.argv[1]
    # Ends with tests/run, whatever way that ends.
    LIBC.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    calls = {}
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    print(f"stand-in server: ready on {path} (pid {os.getpid()})", flush=True)
    try:
        while True:
            for key, _ in selector.select():
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    pid = os.fork()
                    if pid == 0:
                        selector.close()
                        listener.close()
                        call(conn)
                    calls[pid] = conn
                else:
                    os.read(wake_r, 4096)
            while calls:
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                conn = calls.pop(pid, None)
                if conn is None:
                    continue
                if os.WIFSIGNALED(status):
                    answer = f"signal {os.WTERMSIG(status)}\n"
                else:
                    answer = f"exit {os.WEXITSTATUS(status)}\n"
                try:
                    conn.sendall(answer.encode())
                except OSError:
                    pass  # the client is gone
                conn.close()
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()
