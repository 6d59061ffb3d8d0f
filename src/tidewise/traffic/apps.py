"""The lab's applications: server configurations, per-period variants ("upgrades") and client sessions.

Every application is a real Debian server driven by its real client. Ports are used only to
join flows to their ground-truth label (each app owns distinct server ports); they are never features.
"""
from __future__ import annotations

import os
import random
import shlex
import string
import subprocess
from pathlib import Path

from tidewise.traffic.netns import SERVER_IP, Condition, find_tool, postgres_bin

APPS = ["https", "ssh-shell", "ssh-transfer", "postgres", "redis", "mqtt", "dns", "ftp"]
HELD_OUT = "ftp"  # never in training: must be flagged, not confidently misclassified
PORTS = {"https": 443, "ssh-shell": 22, "ssh-transfer": 2222, "postgres": 5432, "redis": 6379,
         "mqtt": 1883, "dns": 53, "ftp": 21}
FTP_PASV = (40000, 40063)
RELAY_OFFSET = 20000  # relayed app port p listens on p + RELAY_OFFSET
RELAYED = ["https", "ssh-shell", "ssh-transfer", "postgres", "redis", "mqtt", "dns"]
# Relative session rates: DNS and FTP sessions make several flows each.
SESSION_WEIGHT = {"https": 1.0, "ssh-shell": 1.0, "ssh-transfer": 1.0, "postgres": 1.0,
                  "redis": 1.0, "mqtt": 1.0, "dns": 0.45, "ftp": 0.45}

BASE_VARIANT = {
    "https": {"tls": "1.2", "http": "1.1"},
    "ssh-shell": {"cipher": "aes128-ctr", "compression": "no"},
    "ssh-transfer": {},
    "postgres": {"ssl": "off"},
    "redis": {},
    "mqtt": {"qos": 0, "protocol": "mqttv311"},
    "dns": {"transport": "udp"},
    "ftp": {},
}
# What each period changes relative to the previous one (cumulative).
UPGRADES = [
    {},
    {"https": {"tls": "1.3"}, "ssh-shell": {"cipher": "chacha20-poly1305@openssh.com"},
     "postgres": {"ssl": "on"}, "mqtt": {"qos": 1}},
    {"https": {"http": "2"}, "ssh-shell": {"compression": "yes"}, "dns": {"transport": "tcp"},
     "mqtt": {"protocol": "mqttv5"}},
]

ENVIRONMENTS = [
    [Condition("lan"), Condition("wan-20m", rate_mbit=20),
     Condition("relay-3ms", relay=True, delay_ms=3, jitter_ms=4)],
    [Condition("lan"), Condition("wan-8m-mtu1280", rate_mbit=8, mtu=1280),
     Condition("relay-8ms-chunk600", relay=True, delay_ms=8, jitter_ms=10, chunk=600)],
    [Condition("lan-mtu9000", mtu=9000), Condition("wan-4m-mtu1400", rate_mbit=4, mtu=1400),
     Condition("relay-15ms-chunk300", relay=True, delay_ms=15, jitter_ms=25, chunk=300)],
]
N_FILES = 20


def variants_for(period: int) -> dict[str, dict]:
    out = {a: dict(v) for a, v in BASE_VARIANT.items()}
    for k in range(1, period + 1):
        for app, change in UPGRADES[min(k, len(UPGRADES) - 1)].items():
            out[app].update(change)
    return out


def port_to_app() -> dict[int, str]:
    m = {p: a for a, p in PORTS.items()}
    m.update({p + RELAY_OFFSET: a for a, p in PORTS.items() if a in RELAYED})
    m.update({p: "ftp" for p in range(FTP_PASV[0], FTP_PASV[1] + 1)})
    return m


# ---------------------------------------------------------------- one-time set-up
def prepare(wd: Path, seed: int) -> None:
    """Certificates, keys, files to serve, a PostgreSQL cluster, DNS records."""
    rng = random.Random(seed)
    run = lambda *c: subprocess.run(list(c), check=True, capture_output=True)  # noqa: E731
    (wd / "www").mkdir()
    for i in range(N_FILES):  # log-uniform sizes, 300 B .. 1.5 MB
        size = int(300 * (5000 ** (i / (N_FILES - 1))))
        (wd / "www" / f"f{i:02d}.bin").write_bytes(rng.randbytes(size))
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3", "-subj",
        "/CN=lab.tidewise.test", "-keyout", str(wd / "key.pem"), "-out", str(wd / "cert.pem"))
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wd / "host_key"))
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wd / "client_key"))
    (wd / "authorized_keys").write_text((wd / "client_key.pub").read_text())
    os.chmod(wd / "authorized_keys", 0o600)
    (wd / "up").mkdir()
    # PostgreSQL: a throw-away cluster owned by the postgres user.
    pg = wd / "pg"
    pg.mkdir()
    (wd / "pgsock").mkdir()
    for p in (pg, wd / "pgsock"):
        subprocess.run(["chown", "postgres:postgres", str(p)], check=True)
    initdb = str(Path(postgres_bin()).parent / "initdb")
    run("runuser", "-u", "postgres", "--", initdb, "-D", str(pg), "-A", "trust", "--no-sync")
    for name in ("cert.pem", "key.pem"):
        dst = pg / f"srv_{name}"
        dst.write_bytes((wd / name).read_bytes())
        subprocess.run(["chown", "postgres:postgres", str(dst)], check=True)
        os.chmod(dst, 0o600)
    with open(pg / "pg_hba.conf", "a") as f:
        f.write("host all all 0.0.0.0/0 trust\n")
    # DNS data: A records of varying counts, TXT records of varying lengths.
    hosts = []
    for i in range(30):
        for j in range(1 + i % 8):
            hosts.append(f"10.77.{50 + i}.{j + 1} host{i}.lab.test")
    (wd / "hosts").write_text("\n".join(hosts) + "\n")
    (wd / "txt.conf").write_text("".join(
        f'txt-record=txt{i}.lab.test,"{"".join(rng.choices(string.ascii_letters, k=20 + 40 * i))}"\n'
        for i in range(10)))
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory


# ---------------------------------------------------------------- servers
def server_commands(wd: Path, variants: dict[str, dict]) -> dict[str, list[str]]:
    """Command lines (run inside the server namespace) for every server, configured for the period."""
    https = variants["https"]
    protos = "TLSv1.2" if https["tls"] == "1.2" else "TLSv1.2 TLSv1.3"
    h2 = " http2" if https["http"] == "2" else ""
    (wd / "nginx.conf").write_text(f"""
worker_processes 1; daemon off; user root; pid {wd}/nginx.pid; error_log {wd}/nginx.err;
events {{ worker_connections 512; }}
http {{ access_log off; keepalive_requests 1000; default_type application/octet-stream;
  server {{ listen 0.0.0.0:443 ssl{h2}; ssl_certificate {wd}/cert.pem; ssl_certificate_key {wd}/key.pem;
    ssl_protocols {protos}; root {wd}/www; }} }}
""")
    (wd / "sshd_config").write_text(f"""Port 22
Port 2222
ListenAddress 0.0.0.0
HostKey {wd}/host_key
PidFile {wd}/sshd.pid
AuthorizedKeysFile {wd}/authorized_keys
PermitRootLogin yes
PasswordAuthentication no
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
""")
    (wd / "mosquitto.conf").write_text("listener 1883 0.0.0.0\nallow_anonymous true\npersistence false\n")
    (wd / "vsftpd.conf").write_text(f"""listen=YES
listen_address={SERVER_IP}
background=NO
anonymous_enable=YES
local_enable=NO
write_enable=NO
anon_root={wd}/www
no_anon_password=YES
pasv_enable=YES
pasv_min_port={FTP_PASV[0]}
pasv_max_port={FTP_PASV[1]}
seccomp_sandbox=NO
secure_chroot_dir=/var/run/vsftpd/empty
xferlog_enable=NO
""")
    pg_ssl = "on" if variants["postgres"]["ssl"] == "on" else "off"
    pg_opts = (f"listen_addresses='*' port=5432 unix_socket_directories='{wd}/pgsock' ssl={pg_ssl} "
               f"ssl_cert_file='srv_cert.pem' ssl_key_file='srv_key.pem' fsync=off max_connections=60")
    pg = ["runuser", "-u", "postgres", "--", postgres_bin(), "-D", str(wd / "pg")]
    for kv in shlex.split(pg_opts):
        pg += ["-c", kv]
    return {
        "nginx": [find_tool("nginx"), "-c", str(wd / "nginx.conf")],
        "sshd": [find_tool("sshd"), "-D", "-f", str(wd / "sshd_config"), "-E", str(wd / "sshd.log")],
        "postgres": pg,
        "redis": ["redis-server", "--bind", "0.0.0.0", "--port", "6379", "--save", "",
                  "--appendonly", "no", "--protected-mode", "no", "--dir", str(wd)],
        "mosquitto": [find_tool("mosquitto"), "-c", str(wd / "mosquitto.conf")],
        "dnsmasq": [find_tool("dnsmasq"), "-k", "--no-resolv", "--no-hosts", "--bind-interfaces",
                    f"--listen-address={SERVER_IP},127.0.0.1", f"--addn-hosts={wd}/hosts",
                    f"--conf-file={wd}/txt.conf", "--user=root", "--cache-size=0"],
        "vsftpd": [find_tool("vsftpd"), str(wd / "vsftpd.conf")],
    }


LISTEN_PORTS = [443, 22, 2222, 5432, 6379, 1883, 53, 21]


# ---------------------------------------------------------------- client sessions
def _target(app: str, cond: Condition, variant: dict) -> int:
    relayable = app in RELAYED and not (app == "dns" and variant.get("transport") == "udp")
    return PORTS[app] + (RELAY_OFFSET if cond.relay and relayable else 0)


def _think(rng: random.Random) -> str:
    return f"sleep {rng.choice([0.01, 0.03, 0.06, 0.12, 0.25, 0.5]) * rng.uniform(0.5, 1.5):.3f}"


_SHELL_CMDS = ["uname -a", "ls -la /usr/bin | head -n {n}", "head -c {b} /etc/services", "date",
               "ps aux | head -n {n}", "echo {w}", "cat /etc/os-release", "df -h", "id",
               "ls /usr/share | head -n {n}", "seq 1 {n}"]


def session_script(app: str, variant: dict, cond: Condition, rng: random.Random, wd: Path) -> str:
    """A bash script (run in the client namespace) for one session of `app`."""
    port = _target(app, cond, variant)
    host = SERVER_IP
    ssh_opts = (f"-i {wd}/client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                f"-o BatchMode=yes -o LogLevel=ERROR -o ConnectTimeout=10")
    files = [f"f{i:02d}.bin" for i in range(N_FILES)]
    small = files[: N_FILES * 3 // 4]
    if app == "https":
        tls = "--tlsv1.2 --tls-max 1.2" if variant["tls"] == "1.2" else "--tlsv1.3"
        http = "--http2" if variant["http"] == "2" else "--http1.1"
        urls = " ".join(f"https://{host}:{port}/{f} -o /dev/null"
                        for f in rng.sample(small, rng.randint(1, 6)))
        return f"curl -sk --max-time 25 {tls} {http} {urls}"
    if app == "ssh-shell":
        cmds = []
        for _ in range(rng.randint(2, 8)):
            c = rng.choice(_SHELL_CMDS).format(n=rng.randint(3, 200), b=rng.randint(50, 6000),
                                               w="".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 60))))
            cmds += [f"echo {shlex.quote(c)}", _think(rng)]
        body = "; ".join(cmds + ["echo exit"])
        return (f"{{ {body}; }} | ssh -tt {ssh_opts} -p {port} -c {variant['cipher']} "
                f"-o Compression={variant['compression']} root@{host} >/dev/null")
    if app == "ssh-transfer":
        picks = rng.sample(small, rng.randint(1, 3))
        if rng.random() < 0.5:
            f = picks[0]
            if rng.random() < 0.5:
                return f"scp -q -P {port} {ssh_opts} root@{host}:{wd}/www/{f} /dev/null"
            return f"scp -q -P {port} {ssh_opts} {wd}/www/{f} root@{host}:{wd}/up/{rng.randint(0, 99)}.bin"
        batch = "\\n".join([f"get {wd}/www/{f} /dev/null" for f in picks] + ["ls " + str(wd / "www")])
        return f"printf '{batch}\\n' | sftp -q -b - -P {port} {ssh_opts} root@{host} >/dev/null"
    if app == "postgres":
        mode = "require" if variant["ssl"] == "on" else "disable"
        stmts = []
        for _ in range(rng.randint(1, 6)):
            n = rng.choice([1, 5, 20, 100, 400, 1500])
            stmts.append(rng.choice([
                f"SELECT g, md5(g::text) FROM generate_series(1, {n}) g;",
                f"SELECT count(*), sum(x) FROM generate_series(1, {n * 10}) x;",
                "SELECT now(), version();",
                f"CREATE TEMP TABLE IF NOT EXISTS t(x int, s text); INSERT INTO t SELECT g, repeat('x', {n % 97}) "
                f"FROM generate_series(1, {n}) g; SELECT * FROM t LIMIT {n};"]))
            stmts.append(f"\\! {_think(rng)}")
        script = "\\n".join(s.replace("'", "'\\''") for s in stmts)
        return (f"printf '%b\\n' '{script}' | PGCONNECT_TIMEOUT=10 psql -q -X "
                f"'host={host} port={port} user=postgres dbname=postgres sslmode={mode}' -f - >/dev/null")
    if app == "redis":
        lines = []
        for i in range(rng.randint(2, 12)):
            v = "".join(rng.choices(string.ascii_letters, k=rng.choice([4, 30, 200, 1200, 4000])))
            lines.append("echo " + shlex.quote(rng.choice([
                f"SET k{i} {v}", f"GET k{i}", "INCR counter", f"LPUSH l {v[:50]}", "LRANGE l 0 40",
                "PING", f"HSET h f{i} {v[:300]}", "HGETALL h", "DBSIZE"])))
            lines.append(_think(rng))
        return f"{{ {'; '.join(lines)}; }} | redis-cli -h {host} -p {port} >/dev/null"
    if app == "mqtt":
        lines = []
        for _ in range(rng.randint(1, 15)):
            lines += [f"echo {''.join(rng.choices(string.ascii_letters, k=rng.choice([8, 40, 160, 700, 2000])))}",
                      _think(rng)]
        topic = f"sensors/{rng.choice(['temp', 'door', 'power', 'air'])}/{rng.randint(1, 50)}"
        return (f"{{ {'; '.join(lines)}; }} | mosquitto_pub -h {host} -p {port} -t {topic} "
                f"-q {variant['qos']} -V {variant['protocol']} -l")
    if app == "dns":
        qs = []
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.6:
                qs.append(f"host{rng.randint(0, 29)}.lab.test A")
            else:
                qs.append(f"txt{rng.randint(0, 9)}.lab.test TXT")
        tcp = "+tcp" if variant["transport"] == "tcp" else "+notcp"
        return f"dig @{host} -p {port} +tries=1 +time=3 {tcp} {' '.join(qs)} >/dev/null"
    if app == "ftp":
        urls = " ".join(f"ftp://{host}:{port}/{f} -o /dev/null" for f in rng.sample(small, rng.randint(1, 4)))
        listing = f"ftp://{host}:{port}/ -o /dev/null" if rng.random() < 0.4 else ""
        return f"curl -s --max-time 25 {urls} {listing}"
    raise ValueError(f"unknown app {app}")
