"""`tidewise traffic lab`: generate real, labelled, drifting traffic.

Per period: (re)start every server with the period's variants, start tcpdump on the client's veth
(one pcap per period), then cycle through the period's environments in short segments; in each
segment a pool of client workers runs sessions of random applications with random think times.
Segments are drained (all sessions finished) before the condition changes, so every flow belongs
to exactly one (period, environment). The manifest records segments, variants and upgrades; labels
are joined later (flows.py) from each flow's server port and first-seen time.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from tidewise.traffic import apps as A
from tidewise.traffic.netns import (CLIENT_IP, SERVER_IP, SUBNET, Condition, LabNetwork, in_ns,
                                    missing_requirements, package_versions, sh)


class LabError(RuntimeError):
    pass


@dataclass(frozen=True)
class LabConfig:
    out: str
    periods: int = 3
    period_seconds: float = 240.0
    segment_seconds: float = 20.0
    seed: int = 0
    snaplen: int = 160  # headers are all nfstream's statistics need; keeps pcaps small


class _Procs:
    """Long-running processes (servers, relay, tcpdump); each in its own process group."""

    def __init__(self, logdir: Path):
        self.logdir, self.procs = logdir, {}

    def start(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(self.logdir / f"{name}.log", "ab")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = p
        return p

    def stop(self, name: str, sig: int = signal.SIGTERM, wait: float = 5.0) -> None:
        p = self.procs.pop(name, None)
        if p is None or p.poll() is not None:
            return
        try:
            os.killpg(p.pid, sig)
            p.wait(wait)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)
        except ProcessLookupError:
            pass

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


def _wait_listening(net: LabNetwork, ports: list[int], timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    missing = ports
    while time.time() < deadline:
        out = sh(in_ns(net.server_ns, ["ss", "-Hltnu"]), check=False).stdout
        have = {int(tok.rsplit(":", 1)[1]) for line in out.splitlines()
                for tok in line.split()[3:5] if ":" in tok and tok.rsplit(":", 1)[1].isdigit()}
        missing = [p for p in ports if p not in have]
        if not missing:
            return
        time.sleep(0.3)
    raise LabError(f"servers did not come up, ports not listening: {missing}")


def _run_session(net: LabNetwork, script: str, timeout: float = 40.0) -> int:
    p = subprocess.Popen(in_ns(net.client_ns, ["bash", "-c", script]), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        return -9


def _segment(net: LabNetwork, wd: Path, variants: dict, cond: Condition, seconds: float,
             rng: random.Random, stats: dict) -> None:
    apps = list(A.SESSION_WEIGHT)
    weights = [A.SESSION_WEIGHT[a] for a in apps]
    workers = rng.randint(4, 9)
    stop_at = time.time() + seconds
    lock = threading.Lock()
    seeds = [rng.randrange(2**31) for _ in range(workers)]

    def worker(seed: int) -> None:
        r = random.Random(seed)
        while time.time() < stop_at:
            app = r.choices(apps, weights)[0]
            rc = _run_session(net, A.session_script(app, variants[app], cond, r, wd))
            with lock:
                key = app if rc == 0 else f"{app}:failed"
                stats[key] = stats.get(key, 0) + 1
            time.sleep(r.expovariate(1 / 0.1))

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(worker, seeds))


def run_lab(cfg: LabConfig, log: Callable[[str], None] = print) -> Path:
    """Generate pcaps + manifest under cfg.out; returns the manifest path."""
    problems = missing_requirements()
    if problems:
        raise LabError("the traffic lab cannot run:\n- " + "\n- ".join(problems))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(cfg.seed)
    wd = Path(tempfile.mkdtemp(prefix="tidewise-lab-"))
    os.chmod(wd, 0o755)
    net = LabNetwork(tag=f"{os.getpid() % 100000}")
    procs = _Procs(out)
    manifest: dict = {"config": asdict(cfg), "subnet": SUBNET, "server_ip": SERVER_IP,
                      "client_ip": CLIENT_IP, "apps": A.APPS, "held_out": A.HELD_OUT,
                      "ports": {str(k): v for k, v in A.port_to_app().items()},
                      "packages": package_versions(), "periods": [], "segments": []}
    path = out / "lab_manifest.json"
    old_term = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        log(f"preparing servers in {wd}")
        A.prepare(wd, cfg.seed)
        net.create()
        for period in range(cfg.periods):
            variants = A.variants_for(period)
            envs = A.ENVIRONMENTS[min(period, len(A.ENVIRONMENTS) - 1)]
            upgrades = A.UPGRADES[period] if 0 < period < len(A.UPGRADES) else {}
            drifted = sorted(a for a in A.APPS if variants[a] != A.BASE_VARIANT[a])
            for name, cmd in A.server_commands(wd, variants).items():
                procs.start(f"srv-{name}", in_ns(net.server_ns, cmd))
            _wait_listening(net, A.LISTEN_PORTS)
            pcap = out / f"period{period}.pcap"
            procs.start("tcpdump", in_ns(net.client_ns, [
                "tcpdump", "-i", net.client_if, "-s", str(cfg.snaplen), "-U", "-w", str(pcap),
                "ip and net " + SUBNET]))
            time.sleep(1.0)
            stats: dict = {}
            t_period = time.time()
            seg = 0
            while time.time() - t_period < cfg.period_seconds:
                cond = envs[seg % len(envs)]
                net.apply(cond)
                if cond.relay:
                    maps = sum((["--map", f"{SERVER_IP}:{A.PORTS[a] + A.RELAY_OFFSET}=127.0.0.1:{A.PORTS[a]}"]
                                for a in A.RELAYED), [])
                    procs.start("relay", in_ns(net.server_ns, [
                        sys.executable, "-m", "tidewise.traffic.relay", *maps, "--delay-ms", str(cond.delay_ms),
                        "--jitter-ms", str(cond.jitter_ms), "--chunk", str(cond.chunk),
                        "--seed", str(rng.randrange(2**31))]))
                    _wait_listening(net, [A.PORTS[a] + A.RELAY_OFFSET for a in A.RELAYED])
                seconds = min(cfg.segment_seconds, cfg.period_seconds - (time.time() - t_period))
                t0 = time.time()
                _segment(net, wd, variants, cond, max(seconds, 1.0), rng, stats)
                time.sleep(0.5)  # let FIN/ACKs of the last sessions reach the capture
                t1 = time.time()
                procs.stop("relay")
                manifest["segments"].append({"period": period, "environment": cond.name,
                                             "t_start": t0, "t_end": t1, "condition": cond.to_dict()})
                log(f"period {period} segment {seg} ({cond.name}) {t1 - t0:.0f}s")
                path.write_text(json.dumps(manifest, indent=1))  # a partial run stays usable
                seg += 1
            procs.stop("tcpdump", signal.SIGINT)
            for name in [n for n in procs.procs if n.startswith("srv-")]:
                procs.stop(name, signal.SIGINT if name == "srv-postgres" else signal.SIGTERM)
            manifest["periods"].append({
                "period": period, "pcap": pcap.name, "variants": variants, "upgrades": upgrades,
                "drifted_apps": drifted, "environments": [c.to_dict() for c in envs],
                "sessions": dict(sorted(stats.items()))})
            log(f"period {period} done: {dict(sorted(stats.items()))}")
            path.write_text(json.dumps(manifest, indent=1))
    finally:
        signal.signal(signal.SIGTERM, old_term)
        procs.stop_all()
        net.destroy()
        shutil.rmtree(wd, ignore_errors=True)
    path.write_text(json.dumps(manifest, indent=1))
    return path
