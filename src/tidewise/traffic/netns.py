"""Network namespaces, veth and link conditions for the traffic lab.

Two namespaces (server, client) joined by one veth pair on 10.77.0.0/24. Nothing else is
routed: the client has no default route, so only the lab's own addresses and loopback can
ever be reached. Conditions are applied with `tc` (tbf rate limit) and the link MTU; delay,
jitter and re-chunking come from the userspace relay (relay.py) because this kernel has no netem.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass

SUBNET = "10.77.0.0/24"
SERVER_IP = "10.77.0.1"
CLIENT_IP = "10.77.0.2"

# Debian packages the lab needs, keyed by the executable that proves each is there.
REQUIRED_TOOLS: dict[str, str] = {
    "ip": "iproute2", "tc": "iproute2", "ethtool": "ethtool", "tcpdump": "tcpdump",
    "nginx": "nginx", "curl": "curl", "sshd": "openssh-server", "ssh": "openssh-client",
    "ssh-keygen": "openssh-client", "redis-server": "redis-server", "redis-cli": "redis-tools",
    "mosquitto": "mosquitto", "mosquitto_pub": "mosquitto-clients", "dnsmasq": "dnsmasq",
    "dig": "dnsutils", "vsftpd": "vsftpd", "psql": "postgresql-client", "openssl": "openssl",
    "runuser": "util-linux",
}
_SBIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


def find_tool(name: str) -> str | None:
    """Path of an executable, also looking in sbin directories that a user PATH may lack."""
    found = shutil.which(name)
    if found:
        return found
    for d in _SBIN:
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def postgres_bin() -> str | None:
    """The newest installed PostgreSQL server binary (Debian keeps it out of PATH)."""
    root = "/usr/lib/postgresql"
    if not os.path.isdir(root):
        return None
    versions = sorted((v for v in os.listdir(root) if v.isdigit()), key=int)
    for v in reversed(versions):
        p = os.path.join(root, v, "bin", "postgres")
        if os.access(p, os.X_OK):
            return p
    return None


def missing_requirements() -> list[str]:
    """Human-readable list of what the lab lacks (empty when it can run)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("the lab must run as root (it creates network namespaces)")
    pkgs = sorted({pkg for tool, pkg in REQUIRED_TOOLS.items() if find_tool(tool) is None})
    if postgres_bin() is None:
        pkgs.append("postgresql")
    if pkgs:
        problems.append("missing Debian packages; install them with:\n  apt-get install -y "
                        + " ".join(sorted(set(pkgs))))
    return problems


def package_versions() -> dict[str, str]:
    """Installed versions of the Debian packages the lab uses (recorded in the manifest)."""
    pkgs = sorted(set(REQUIRED_TOOLS.values()) | {"postgresql"})
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", *pkgs],
                         capture_output=True, text=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def sh(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def in_ns(ns: str, cmd: list[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *cmd]


@dataclass(frozen=True)
class Condition:
    """One network environment: what the link and the relay do to every flow in a segment."""

    name: str
    rate_mbit: float | None = None   # tbf rate limit on both veth ends; None = unshaped
    mtu: int = 1500
    relay: bool = False              # route TCP apps through the delaying/re-chunking relay
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    chunk: int = 0                   # relay re-chunk size in bytes (0 = keep reads as they come)

    def to_dict(self) -> dict:
        return asdict(self)


class LabNetwork:
    """Creates and tears down the two namespaces; `apply` switches the link condition."""

    def __init__(self, tag: str):
        tag = tag[:8]
        self.server_ns, self.client_ns = f"tw{tag}s", f"tw{tag}c"
        self.server_if, self.client_if = f"tw{tag}S", f"tw{tag}C"
        self.created = False

    def create(self) -> None:
        self.destroy()  # stale namespaces from a crashed run with the same tag
        sh(["ip", "netns", "add", self.server_ns])
        sh(["ip", "netns", "add", self.client_ns])
        self.created = True
        sh(["ip", "link", "add", self.client_if, "type", "veth", "peer", "name", self.server_if])
        sh(["ip", "link", "set", self.server_if, "netns", self.server_ns])
        sh(["ip", "link", "set", self.client_if, "netns", self.client_ns])
        for ns, dev, ip in ((self.server_ns, self.server_if, SERVER_IP),
                            (self.client_ns, self.client_if, CLIENT_IP)):
            sh(in_ns(ns, ["ip", "link", "set", "lo", "up"]))
            sh(in_ns(ns, ["ip", "addr", "add", f"{ip}/24", "dev", dev]))
            sh(in_ns(ns, ["ip", "link", "set", dev, "up"]))
            # Without this the capture sees 64 KB GSO super-packets and the MTU changes nothing.
            sh(in_ns(ns, ["ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off"]), check=False)

    def apply(self, cond: Condition) -> None:
        for ns, dev in ((self.server_ns, self.server_if), (self.client_ns, self.client_if)):
            sh(in_ns(ns, ["ip", "link", "set", "dev", dev, "mtu", str(cond.mtu)]))
            sh(in_ns(ns, ["tc", "qdisc", "del", "dev", dev, "root"]), check=False)
            if cond.rate_mbit:
                burst = max(16, int(cond.rate_mbit * 4))  # kbit; enough for a few full-size frames
                sh(in_ns(ns, ["tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate",
                              f"{cond.rate_mbit}mbit", "burst", f"{burst}kbit", "latency", "100ms"]))

    def destroy(self) -> None:
        for ns in (self.server_ns, self.client_ns):
            out = sh(["ip", "netns", "pids", ns], check=False).stdout.split()
            for pid in out:  # anything still alive in our namespaces is ours
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            sh(["ip", "netns", "del", ns], check=False)
        self.created = False
