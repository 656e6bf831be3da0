#!/usr/bin/env python3
"""docker-compose.yml's multi-region topology, run without a container
engine: Linux network namespaces joined by veth links, the services started
as processes inside them with the environment compose gives them.

    region cp   control-plane, postgres, admin-web      (the control plane's home)
    region eu   redis-eu, data-plane-eu-1, data-plane-eu-2
    region us   redis-us, data-plane-us-1, data-plane-us-2
    region net  mock-provider                           (stands for the providers)

    cp ==== eu ---- net        each region reaches the control plane over its
    cp ==== us ---- net        own link (cut with `link eu down`) and the
    cp ------------ net        providers over another; the control plane
                               reaches them too (credential health checks)

Each compose service is a "container": an address of its own in its region
(198.18.R.x, the range set aside for test networks, RFC 2544) where it
listens as compose says, and every service name resolves in every region
(`/etc/netns/NS/hosts`, which `ip netns exec` binds over /etc/hosts), so
`https://control-plane:50051` and `redis://redis-eu:6379` are what compose
wires, TLS and mTLS included (`deploy/gen-certs.sh` makes the
certificates). Nothing is addressed outside the namespaces made here:
the root namespace gets no address and no route; "published" ports are
forwarders on 127.0.0.1 whose dialing thread enters the service's namespace
(`setns`), as compose publishes a container's port on the host.

Run as root (`deploy/topology.sh`):

    topology.sh up [--dir DIR]        build and start everything, print where things are
    topology.sh status                what runs
    topology.sh stop|start|kill SVC   one service (kill = SIGKILL)
    topology.sh link REGION down|up   cut / restore a region's link to the control plane
    topology.sh ports                 forward compose's published ports to 127.0.0.1 (foreground)
    topology.sh down                  stop everything, remove the namespaces and the state

The e2e suite drives the same class (`Topology`) in process.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
DEFAULT_DIR = Path("/tmp/aigw-topology")

# Regions: namespace suffix, service subnet (198.18.R.0/24).
REGIONS = {"cp": 0, "eu": 1, "us": 2, "net": 9}
# Links between regions: (a, b, link number); link N is 198.19.N.0/30, a=.1, b=.2.
LINKS = [("cp", "eu", 1), ("cp", "us", 2), ("eu", "net", 3), ("us", "net", 4), ("cp", "net", 5)]
MOCK = "mock-provider"
MOCK_PORT = 8000
TIMEOUT = 60.0


def log(msg: str) -> None:
    print(f"topology: {msg}", file=sys.stderr, flush=True)


def run(*cmd: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(list(cmd), capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       timeout=TIMEOUT)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip() or p.stdout.strip()}")
    if not quiet and p.returncode != 0:
        log(f"{' '.join(cmd)}: {p.stderr.strip()}")
    return p


def wait_until(what: str, fn: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(0.1)
    raise TimeoutError(f"{what} not true after {timeout:.0f}s" + (f": {last!r}" if last else ""))


# ---------------------------------------------------------------- namespaces

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
CLONE_NEWNET = 0x40000000


def enter_netns(ns: str) -> None:
    """Moves the calling thread (only) into network namespace `ns`."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({ns}): {os.strerror(err)}")
    finally:
        os.close(fd)


def connect_in(ns: str, host: str, port: int, timeout: float = 5.0) -> socket.socket:
    """A TCP connection made from inside namespace `ns` (usable from any thread)."""
    result: dict[str, Any] = {}

    def dial() -> None:
        try:
            enter_netns(ns)
            result["sock"] = socket.create_connection((host, port), timeout=timeout)
        except Exception as e:  # noqa: BLE001 - handed to the caller
            result["error"] = e

    t = threading.Thread(target=dial, daemon=True)
    t.start()
    t.join(timeout + 1)
    if "error" in result:
        raise result["error"]
    if "sock" not in result:
        raise TimeoutError(f"connecting to {host}:{port} in {ns}")
    sock = result["sock"]
    sock.settimeout(None)
    return sock


class Forwarder:
    """127.0.0.1:PORT in the root namespace -> HOST:PORT inside a namespace,
    as compose publishes a container's port on the host's loopback."""

    def __init__(self, ns: str, host: str, port: int, listen_port: int = 0) -> None:
        self.ns, self.host, self.port = ns, host, port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", listen_port))
        self.sock.listen(128)
        self.local_port = self.sock.getsockname()[1]
        self._closed = False
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.local_port}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            enter_netns(self.ns)
            upstream = socket.create_connection((self.host, self.port), timeout=5)
            upstream.settimeout(None)
        except OSError:
            client.close()
            return
        with self._lock:
            self._conns.update((client, upstream))
        try:
            pump(client, upstream)
        finally:
            with self._lock:
                self._conns.difference_update((client, upstream))
            for s in (client, upstream):
                s.close()

    def close(self) -> None:
        self._closed = True
        self.sock.close()
        with self._lock:
            for s in list(self._conns):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def pump(a: socket.socket, b: socket.socket) -> None:
    """Copies bytes both ways until both sides are done."""
    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ, b)
    sel.register(b, selectors.EVENT_READ, a)
    open_ = 2
    while open_:
        for key, _ in sel.select():
            src, dst = key.fileobj, key.data
            try:
                data = src.recv(65536)  # type: ignore[union-attr]
            except OSError:
                data = b""
            if data:
                try:
                    dst.sendall(data)
                except OSError:
                    return
            else:
                sel.unregister(src)
                open_ -= 1
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
    sel.close()


# ---------------------------------------------------------------- compose

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR:?error}`, `$$`."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        v = env.get(name)
        empty = v is None or (op is not None and op.startswith(":") and v == "")
        if op in ("-", ":-") and empty:
            return arg
        if op in ("?", ":?") and empty:
            raise ValueError(f"compose: {name}: {arg}")
        return v or ""
    return _VAR.sub(sub, value)


@dataclass
class Service:
    name: str
    region: str
    address: str
    kind: str  # control-plane | data-plane | admin-web | postgres | redis | mock
    env: dict[str, str] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)
    port: int = 0


def region_of(name: str, env: dict[str, str]) -> str:
    if env.get("AIGW_REGION"):
        return env["AIGW_REGION"]
    m = re.match(r"^redis-(\w+)$", name)
    return m.group(1) if m else "cp"


def load_services(secrets_env: dict[str, str], dirs: dict[str, Path]) -> dict[str, Service]:
    """The services of docker-compose.yml, placed in their regions with
    their environment resolved and their volumes mapped to `dirs`."""
    doc = yaml.safe_load(COMPOSE.read_text())
    hosts: dict[str, int] = {r: 2 for r in REGIONS}
    out: dict[str, Service] = {}
    for name, svc in doc["services"].items():
        raw_env = svc.get("environment") or {}
        env = {k: interpolate("" if v is None else str(v), secrets_env) for k, v in raw_env.items()}
        cmd = svc.get("command") or []
        cmd = cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]
        image = str(svc.get("image", ""))
        if cmd[:1] in (["control-plane"], ["data-plane"], ["admin-web"]):
            kind = cmd[0]
        elif image.startswith("postgres"):
            kind = "postgres"
        elif image.startswith("redis"):
            kind = "redis"
        else:
            raise ValueError(f"compose service {name}: don't know how to run image {image!r}")
        region = region_of(name, env)
        if region not in REGIONS:
            raise ValueError(f"compose service {name}: region {region!r} is not one of {sorted(REGIONS)}")
        host = hosts[region]
        hosts[region] += 1
        address = f"198.18.{REGIONS[region]}.{host if kind != 'data-plane' else 10 + host}"
        # Volumes: bind mounts and named volumes become directories here.
        mounts: dict[str, Path] = {}
        for v in svc.get("volumes") or []:
            src, dst = str(v).split(":")[:2]
            if src.startswith("."):
                mounts[dst] = dirs["certs"] if src.rstrip("/").endswith("certs") else (REPO / src)
            else:
                mounts[dst] = dirs["volumes"] / src
        for k, v in list(env.items()):
            for dst, src in mounts.items():
                if v == dst or v.startswith(dst + "/"):
                    env[k] = str(src) + v[len(dst):]
            # Every container has its own address: listen there.
            if re.fullmatch(r"0\.0\.0\.0:\d+", v):
                env[k] = f"{address}:{v.split(':')[1]}"
        port = {"control-plane": 50051, "admin-web": 9090, "postgres": 5432, "redis": 6379}.get(kind, 8080)
        for var in ("AIGW_LISTEN", "AIGW_ADMIN_LISTEN", "AIGW_GRPC_ADDR"):
            if var in env:
                port = int(env[var].rsplit(":", 1)[1])
        out[name] = Service(name, region, address, kind, env, cmd, port)
    out[MOCK] = Service(MOCK, "net", f"198.18.{REGIONS['net']}.2", "mock", {}, [], MOCK_PORT)
    return out


# ---------------------------------------------------------------- the topology


class Topology:
    """The namespaces, links and processes of one run, with their state in `dir`."""

    def __init__(self, dir: Path = DEFAULT_DIR, prefix: str | None = None,
                 bin_dir: Path | None = None, extra_env: dict[str, dict[str, str]] | None = None):
        self.dir = Path(dir)
        self.state_file = self.dir / "state.json"
        state = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        self.prefix = state.get("prefix") or prefix or f"aigw{secrets.token_hex(2)}"
        self.bin_dir = Path(state.get("bin_dir") or bin_dir or os.environ.get("AIGW_BIN_DIR")
                            or REPO / "target" / "debug")
        self.secrets: dict[str, str] = state.get("secrets") or {
            "POSTGRES_PASSWORD": secrets.token_hex(24),
            "AIGW_MASTER_KEY": secrets.token_hex(32),
            "AIGW_ADMIN_TOKEN": "aigw-topo-admin-" + secrets.token_hex(16),
            "AIGW_NODE_TOKEN": "aigw-topo-node-" + secrets.token_hex(16),
            "AIGW_ADMIN_PASSWORD": "topo-" + secrets.token_hex(8),
        }
        self.pids: dict[str, int] = state.get("pids") or {}
        self.extra_env: dict[str, dict[str, str]] = state.get("extra_env") or extra_env or {}
        self.dirs = {
            "certs": self.dir / "certs",
            "volumes": self.dir / "volumes",
            "logs": self.dir / "logs",
            "pgsock": self.dir / "pgsock",
        }
        self.services = load_services(self.secrets, self.dirs)
        self._forwarders: list[Forwarder] = []

    # -- state

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump({"prefix": self.prefix, "bin_dir": str(self.bin_dir), "secrets": self.secrets,
                       "pids": self.pids, "extra_env": self.extra_env}, f, indent=1)
        tmp.replace(self.state_file)

    def ns(self, region: str) -> str:
        return f"{self.prefix}-{region}"

    def regions(self) -> list[str]:
        return list(REGIONS)

    # -- network

    def build_network(self) -> None:
        for r in REGIONS:
            run("ip", "netns", "add", self.ns(r))
            run("ip", "-n", self.ns(r), "link", "set", "lo", "up")
            run("ip", "netns", "exec", self.ns(r), "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        for a, b, n in LINKS:
            run("ip", "link", "add", f"{b}0", "netns", self.ns(a), "type", "veth",
                "peer", "name", f"{a}0", "netns", self.ns(b))
            run("ip", "-n", self.ns(a), "addr", "add", f"198.19.{n}.1/30", "dev", f"{b}0")
            run("ip", "-n", self.ns(b), "addr", "add", f"198.19.{n}.2/30", "dev", f"{a}0")
        for s in self.services.values():
            run("ip", "-n", self.ns(s.region), "addr", "add", f"{s.address}/32", "dev", "lo")
        for a, b, _ in LINKS:
            self.set_link(a, b, up=True)
        hosts = "127.0.0.1 localhost\n" + "".join(
            f"{s.address} {s.name}\n" for s in self.services.values())
        for r in REGIONS:
            d = Path("/etc/netns") / self.ns(r)
            d.mkdir(parents=True, exist_ok=True)
            (d / "hosts").write_text(hosts)

    def set_link(self, a: str, b: str, up: bool) -> None:
        """Brings the a-b link up (with its routes) or down. Routes through a
        link that goes down are dropped by the kernel, so up re-adds them."""
        n = next(n for x, y, n in LINKS if {x, y} == {a, b})
        if (a, b) not in [(x, y) for x, y, _ in LINKS]:
            a, b = b, a
        state = "up" if up else "down"
        run("ip", "-n", self.ns(a), "link", "set", f"{b}0", state)
        run("ip", "-n", self.ns(b), "link", "set", f"{a}0", state)
        if up:
            run("ip", "-n", self.ns(a), "route", "replace", f"198.18.{REGIONS[b]}.0/24",
                "via", f"198.19.{n}.2")
            run("ip", "-n", self.ns(b), "route", "replace", f"198.18.{REGIONS[a]}.0/24",
                "via", f"198.19.{n}.1")

    def link(self, region: str, up: bool) -> None:
        """Cuts (down) or restores a region's link to the control plane; its
        link to the providers and its apps are not touched."""
        if region not in ("eu", "us"):
            raise ValueError(f"no region {region!r} with a link to the control plane")
        only_a_side = not up
        if only_a_side:
            # Down on the region's side: the control plane's end loses carrier.
            run("ip", "-n", self.ns(region), "link", "set", "cp0", "down")
        else:
            self.set_link("cp", region, up=True)

    def teardown_network(self) -> None:
        for r in REGIONS:
            run("ip", "netns", "del", self.ns(r), check=False, quiet=True)
            shutil.rmtree(Path("/etc/netns") / self.ns(r), ignore_errors=True)

    # -- processes

    def svc(self, name: str) -> Service:
        if name not in self.services:
            raise KeyError(f"no service {name!r}; services: {sorted(self.services)}")
        return self.services[name]

    def alive(self, name: str) -> bool:
        pid = self.pids.get(name)
        if not pid:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:  # a zombie of ours is not alive
            return os.waitpid(pid, os.WNOHANG) == (0, 0)
        except ChildProcessError:
            return Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid)

    def log_path(self, name: str) -> Path:
        return self.dirs["logs"] / f"{name}.log"

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None,
               user: str | None = None) -> int:
        s = self.svc(name)
        self.dirs["logs"].mkdir(parents=True, exist_ok=True)
        full = ["ip", "netns", "exec", self.ns(s.region)]
        if user:
            full += ["runuser", "-u", user, "--"]
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NO_COLOR": "1",
                "RUST_LOG": os.environ.get("RUST_LOG", "info")}
        with open(self.log_path(name), "ab") as logf, open(self.dirs["logs"] / f"{name}.out", "wb") as out:
            p = subprocess.Popen(full + cmd, env={**base, **(env or {})}, stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=logf, start_new_session=True)
        self.pids[name] = p.pid
        self.save()
        return p.pid

    def start(self, name: str, wait: bool = True) -> None:
        """Starts one service (again) as compose would."""
        s = self.svc(name)
        if self.alive(name):
            raise RuntimeError(f"{name} is already running")
        if s.kind == "postgres":
            self._start_postgres(s)
            return
        if s.kind == "redis":
            self._spawn(name, ["redis-server", *s.command[1:], "--bind", s.address,
                               "--port", str(s.port), "--protected-mode", "no"])
        elif s.kind == "mock":
            self._spawn(name, [str(self.bin_dir / "mock-provider"), "--listen",
                               f"{s.address}:{s.port}"])
        else:
            env = {**s.env, **self.extra_env.get(name, {})}
            self._spawn(name, [str(self.bin_dir / s.kind), *s.command[1:]], env)
        if wait:
            self.wait_listening(name)

    def wait_listening(self, name: str, timeout: float = TIMEOUT) -> None:
        s = self.svc(name)

        def up() -> bool:
            if not self.alive(name):
                raise RuntimeError(f"{name} exited; log {self.log_path(name)}:\n{self.tail(name)}")
            connect_in(self.ns(s.region), s.address, s.port, timeout=1).close()
            return True

        wait_until(f"{name} accepts connections on {s.address}:{s.port}", up, timeout)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        s = self.svc(name)
        if s.kind == "postgres":
            self._stop_postgres(fast=sig != signal.SIGKILL)
            return
        pid = self.pids.get(name)
        if not pid or not self.alive(name):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while self.alive(name):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                deadline += timeout
            time.sleep(0.05)

    def kill(self, name: str) -> None:
        self.stop(name, signal.SIGKILL)

    def tail(self, name: str, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path(name).read_text("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    # -- postgres (the compose image's job: a cluster with POSTGRES_USER/DB)

    def _pg_bin(self) -> Path:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not found:
            raise RuntimeError("postgresql is not installed (apt-get install postgresql)")
        return found[-1].parent

    def _pg(self, *args: str) -> subprocess.CompletedProcess[str]:
        s = self.svc("postgres")
        return run("ip", "netns", "exec", self.ns(s.region), "runuser", "-u", "postgres", "--", *args)

    def _start_postgres(self, s: Service) -> None:
        bin_ = self._pg_bin()
        data = self.dirs["volumes"] / "pgdata"
        sock = self.dirs["pgsock"]
        for d in (data, sock):
            d.mkdir(parents=True, exist_ok=True)
            shutil.chown(d, "postgres", "postgres")
        self.dir.chmod(0o755)
        user, db = s.env.get("POSTGRES_USER", "postgres"), s.env.get("POSTGRES_DB", "postgres")
        fresh = not (data / "PG_VERSION").exists()
        if fresh:
            pwfile = self.dir / "pgpass.tmp"
            pwfile.write_text(s.env["POSTGRES_PASSWORD"] + "\n")
            shutil.chown(pwfile, "postgres", "postgres")
            try:
                self._pg(str(bin_ / "initdb"), "-D", str(data), "-U", user, "--pwfile", str(pwfile),
                         "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
            finally:
                pwfile.unlink()
            with open(data / "pg_hba.conf", "a") as f:
                f.write("host all all 0.0.0.0/0 scram-sha-256\n")
        self.dirs["logs"].mkdir(parents=True, exist_ok=True)
        logfile = self.dirs["logs"] / "postgres.log"
        logfile.touch()
        shutil.chown(logfile, "postgres", "postgres")
        self._pg(str(bin_ / "pg_ctl"), "-D", str(data), "-l", str(logfile), "-w", "-t", "60",
                 "-o", f"-h {s.address} -p {s.port} -k {sock} -F -c max_connections=200", "start")
        pid = int((data / "postmaster.pid").read_text().split()[0])
        self.pids["postgres"] = pid
        self.save()
        if fresh and db != "postgres":
            self._pg(str(bin_ / "psql"), "-h", str(sock), "-p", str(s.port), "-U", user, "-d", "postgres",
                     "-c", f'CREATE DATABASE "{db}" OWNER "{user}"')

    def _stop_postgres(self, fast: bool = True) -> None:
        data = self.dirs["volumes"] / "pgdata"
        if not (data / "postmaster.pid").exists():
            return
        self._pg(str(self._pg_bin() / "pg_ctl"), "-D", str(data), "-m", "fast" if fast else "immediate",
                 "-w", "-t", "60", "stop")

    # -- whole

    def up(self) -> None:
        """Certificates, network, then the services in compose's order."""
        if self.state_file.exists() and self.pids:
            raise RuntimeError(f"{self.dir} holds a running topology: `down` it first")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.save()
        run("bash", str(REPO / "deploy" / "gen-certs.sh"), str(self.dirs["certs"]))
        for d in ("volumes", "logs"):
            self.dirs[d].mkdir(parents=True, exist_ok=True)
        try:
            self.build_network()
            order = ["postgres"] + [n for n, s in self.services.items() if s.kind == "redis"] + \
                ["control-plane", MOCK, "admin-web"] + \
                sorted(n for n, s in self.services.items() if s.kind == "data-plane")
            for name in order:
                self.start(name)
        except BaseException:
            self.down(keep_dir=True)
            raise

    def down(self, keep_dir: bool = False) -> None:
        for f in self._forwarders:
            f.close()
        self._forwarders.clear()
        for name in reversed(list(self.services)):
            try:
                self.stop(name, timeout=10)
            except Exception as e:  # noqa: BLE001 - tear down the rest anyway
                log(f"stopping {name}: {e}")
        # Anything still in our namespaces goes too.
        for r in REGIONS:
            p = run("ip", "netns", "pids", self.ns(r), check=False, quiet=True)
            for pid in p.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        self.pids.clear()
        self.teardown_network()
        if keep_dir:
            self.save()
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def publish(self, name: str, port: int | None = None) -> str:
        """A 127.0.0.1 address forwarding to a service's port (in process)."""
        s = self.svc(name)
        f = Forwarder(self.ns(s.region), s.address, port or s.port)
        self._forwarders.append(f)
        return f.addr

    def status(self) -> list[tuple[str, str, str, bool]]:
        return [(n, s.region, f"{s.address}:{s.port}", self.alive(n)) for n, s in self.services.items()]


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


# ---------------------------------------------------------------- CLI


def published_ports() -> list[tuple[str, str, int, int]]:
    """compose's `ports:` as (service, host ip, host port, container port)."""
    doc = yaml.safe_load(COMPOSE.read_text())
    out = []
    for name, svc in doc["services"].items():
        for p in svc.get("ports") or []:
            parts = str(p).split(":")
            ip = parts[0] if len(parts) == 3 else "0.0.0.0"
            out.append((name, ip, int(parts[-2]), int(parts[-1])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"state directory ({DEFAULT_DIR})")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up")
    sub.add_parser("down")
    sub.add_parser("status")
    for c in ("start", "stop", "kill"):
        sub.add_parser(c).add_argument("service")
    lk = sub.add_parser("link")
    lk.add_argument("region", choices=["eu", "us"])
    lk.add_argument("state", choices=["up", "down"])
    pp = sub.add_parser("ports")
    pp.add_argument("--offset", type=int, default=10000,
                    help="host port = compose's published port + OFFSET (0: compose's own ports)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("topology: needs root (network namespaces)")
    t = Topology(args.dir)
    if args.cmd == "up":
        t.up()
        print(f"up: namespaces {', '.join(t.ns(r) for r in REGIONS)}; state in {t.dir}")
        for n, region, addr, alive in t.status():
            print(f"  {n:18} {region:4} {addr:22} {'running' if alive else 'STOPPED'}")
        print(f"admin token: {t.secrets['AIGW_ADMIN_TOKEN']}")
        print(f"try: ip netns exec {t.ns('eu')} curl -s http://data-plane-eu-1:8080/readyz")
        print("     deploy/topology.sh ports   # compose's published ports on 127.0.0.1 (+10000)")
    elif args.cmd == "down":
        t.down()
    elif args.cmd == "status":
        for n, region, addr, alive in t.status():
            print(f"{n:18} {region:4} {addr:22} {'running' if alive else 'stopped'}")
    elif args.cmd in ("start", "stop", "kill"):
        getattr(t, args.cmd)(args.service)
    elif args.cmd == "link":
        t.link(args.region, args.state == "up")
    elif args.cmd == "ports":
        for name, _ip, host_port, target in published_ports():
            s = t.svc(name)
            f = Forwarder(t.ns(s.region), s.address, target, host_port + args.offset)
            print(f"{name}: 127.0.0.1:{f.local_port} -> {s.address}:{target}", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})


if __name__ == "__main__":
    main()
