#!/usr/bin/env -S python3 -S
"""Stand-in for `systemctl` (lab only): the haproxy unit, driving the real haproxy binary through
a pid file, as haproxy.service would. Exit codes as systemd's: is-active 3 when inactive,
5 for an unknown unit."""
import os, signal, subprocess, sys, time

CFG = "/etc/haproxy/haproxy.cfg"
PID = "/run/haproxy/haproxy.pid"
ENABLED = "/run/haproxy/.enabled"


def pid():
    try:
        p = int(open(PID).read().split()[0])
        os.kill(p, 0)
        return p
    except (OSError, ValueError, IndexError):
        return None


def check():
    r = subprocess.run(["haproxy", "-c", "-q", "-f", CFG], capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        print("Job for haproxy.service failed because the control process exited with error code.", file=sys.stderr)
        sys.exit(1)


def start():
    if pid():
        return
    check()
    subprocess.run(["haproxy", "-D", "-f", CFG, "-p", PID], check=True)


def stop():
    p = pid()
    if not p:
        return
    os.kill(p, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(p, 0)
        except OSError:
            break
        time.sleep(0.05)
    try:
        os.remove(PID)
    except FileNotFoundError:
        pass


args = [a for a in sys.argv[1:] if not a.startswith("-")]
if len(args) < 2:
    print("the lab stand-in knows: systemctl start|stop|reload|restart|is-active|is-enabled|enable|status haproxy", file=sys.stderr)
    sys.exit(1)
verb, unit = args[0], args[1].removesuffix(".service")
if unit != "haproxy":
    print(f"Failed to {verb} {unit}.service: Unit {unit}.service not found.", file=sys.stderr)
    sys.exit(5)
if verb == "start":
    start()
elif verb == "stop":
    stop()
elif verb == "restart":
    stop()
    start()
elif verb == "reload":
    old = pid()
    if not old:
        print("haproxy.service is not active, cannot reload.", file=sys.stderr)
        sys.exit(1)
    check()
    # haproxy's soft reload: a new process takes the sockets, the old one finishes its connections.
    subprocess.run(["haproxy", "-D", "-f", CFG, "-p", PID, "-sf", str(old)], check=True)
elif verb == "is-active":
    print("active" if pid() else "inactive")
    sys.exit(0 if pid() else 3)
elif verb == "enable":
    open(ENABLED, "w").close()
    if "--now" in sys.argv:
        start()
elif verb == "is-enabled":
    enabled = os.path.exists(ENABLED)
    print("enabled" if enabled else "disabled")
    sys.exit(0 if enabled else 1)
elif verb == "status":
    p = pid()
    print(f"● haproxy.service - HAProxy Load Balancer (lab stand-in)\n     Active: {'active (running)' if p else 'inactive (dead)'}" + (f"\n   Main PID: {p}" if p else ""))
    sys.exit(0 if p else 3)
else:
    print(f"Unknown command verb {verb}.", file=sys.stderr)
    sys.exit(1)
