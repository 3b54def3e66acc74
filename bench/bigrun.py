"""A big live run as a user runs it: `llmflow run` on N distinct prompts against the peer
harness's fake OpenAI-compatible server (bench/peer_fake_openai.py, a copy of
../shared/bench/peers/fake_openai.py that also says when the first chat request came), as a
whole process; then `llmflow compare` and `llmflow report` on the run it made.

Prints, per step: wall seconds, CPU seconds of the process tree (the launched process and the
children it reaped), peak RSS of the tree (the sum over the process and its descendants, sampled
every 50 ms from /proc) and of each process; for the run, the time from launch to the first
request at the server and what the server received. The load average is printed beside: on a
shared machine the memory numbers hold, the times do not.

    python bench/bigrun.py --n 10000 [--delay-ms 0] [--no-stream] [--keep DIR] [--no-read]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "Write one short sentence about {item}. Keep it under twenty words."
MB = 1024 * 1024


def write_experiment(into: Path, n: int, port: int, stream: bool) -> Path:
    """The peer harness's llmflow config (gen.py) for n prompts."""
    with (into / "prompts.jsonl").open("w") as f:
        for i in range(n):
            item = PROMPT.format(item=f"topic-{i:06d}")
            f.write(json.dumps({"id": f"p{i:06d}", "user": item}) + "\n")
    config = into / "experiment.yaml"
    config.write_text(
        f"experiment: bigrun-n{n}\ntask: chat\nprompts: prompts.jsonl\nrepeats: 1\n"
        "concurrency: 16\ncache: false\nreport: true\nmodels:\n  - provider: openai\n"
        f"    model: gpt-4o-mini\n    base_url: http://127.0.0.1:{port}/v1\n"
        "    temperature: 0\n    max_tokens: 64\n" + ("" if stream else "    stream: false\n")
    )
    return config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__stats", timeout=5) as r:
        return json.loads(r.read())


def start_server(port: int, delay_ms: int) -> subprocess.Popen:
    env = dict(os.environ, PORT=str(port), DELAY_MS=str(delay_ms))
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "peer_fake_openai.py")],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            stats(port)
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the fake server did not start")


def tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                try:
                    with open(f"/proc/{p}/task/{t}/children") as f:
                        todo.extend(int(c) for c in f.read().split())
                except OSError:
                    pass
        except OSError:
            pass
    return out


def rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")[:80]
    except OSError:
        return "?"


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.stop = pid, threading.Event()
        self.peak_sum, self.peaks, self.names = 0, {}, {}

    def run(self) -> None:
        while not self.stop.is_set():
            total = 0
            for p in tree(self.pid):
                r = rss(p)
                total += r
                if r > self.peaks.get(p, 0):
                    self.peaks[p] = r
                    self.names.setdefault(p, name(p))
            self.peak_sum = max(self.peak_sum, total)
            self.stop.wait(0.05)


def measure(command: list[str], cwd: Path) -> dict:
    load = Path("/proc/loadavg").read_text().split()[0]
    started = time.time()
    t0 = time.perf_counter()
    with open(cwd / "stdout.txt", "a") as out, open(cwd / "stderr.txt", "a") as err:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err)
        sampler = Sampler(process.pid)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    return {
        "command": " ".join(command[:3]),
        "rc": os.waitstatus_to_exitcode(status),
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "tree_peak_mb": round(sampler.peak_sum / MB, 1),
        "procs_peak_mb": sorted(
            ((sampler.names.get(p, "?"), round(v / MB, 1)) for p, v in sampler.peaks.items()),
            key=lambda x: -x[1],
        )[:4],
        "load1_before": float(load),
        "load1_after": float(open("/proc/loadavg").read().split()[0]),
        "started_at": started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("--no-stream", action="store_true")
    parser.add_argument("--keep", type=Path, help="work in this directory, and keep it")
    parser.add_argument("--no-read", action="store_true", help="skip compare and report")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="llmflow-bigrun-"))
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = write_experiment(work, args.n, port, not args.no_stream)
    uri = f"sqlite:///{work}/mlflow.db"
    bin_dir = Path(sys.executable).parent
    llmflow = str(bin_dir / "llmflow")
    server = start_server(port, args.delay_ms)
    try:
        run = measure([llmflow, "run", str(config), "--no-cache", "--tracking-uri", uri], work)
        received = stats(port)
    finally:
        server.terminate()
        server.wait()
    first = received.get("first_chat_at")
    run["first_request_s"] = round(first - run["started_at"], 2) if first else None
    run["requests"] = received.get("chat_requests")
    print(json.dumps(run))
    if args.no_read:
        return
    experiment = f"bigrun-n{args.n}"
    for command in (
        [llmflow, "compare", "-e", experiment, "--tracking-uri", uri],
        [llmflow, "report", "-e", experiment, "--out", str(work / "report"), "--tracking-uri", uri],
    ):
        print(json.dumps(measure(command, work)))
    print(f"work dir: {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
