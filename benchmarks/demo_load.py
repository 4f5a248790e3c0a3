"""The browser demo under load: server RSS and latency in two scenarios, each against a fresh
``oneshot demo`` process on 127.0.0.1 and a free port: VmRSS sampled every 50 ms, and VmHWM
(reset when the server is ready, where the kernel allows: the scenario's peak).

- attack: --rounds rounds of --concurrency concurrent POST /api/support uploads, each of one
  --side x --side greyscale PNG of a few strokes on white (tens of KB; 16 MP decoded);
- small: --requests POST /api/classify of a 105x105 drawing at --concurrency, against the first
  test alphabet's support set (or a small uploaded one without the dataset).

Past --max-rss-gb or --deadline seconds the server is killed. --python and --src run another
checkout's server (PYTHONPATH=SRC); the module it imports is printed.

    ONESHOT_DATA=... python benchmarks/demo_load.py [--python P --src DIR] [--json out.json]
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import numpy as np
from _common import markdown_table, parser, write_json
from PIL import Image, ImageDraw

HOST = "127.0.0.1"  # the only address this script sends traffic to
SAMPLE_SECONDS = 0.05


def proc_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of /proc/PID/status, MB ({} once the process has gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {ln.split(":")[0]: int(ln.split()[1]) / 1024 for ln in lines
            if ln.startswith(("VmRSS:", "VmHWM:"))}


def server_env(args) -> dict[str, str]:
    """This process's environment, with --src first on PYTHONPATH."""
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(args.src).resolve())] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


class Server:
    """One ``python -m oneshot demo`` process on HOST and a free port; log in ``workdir``."""

    def __init__(self, args, workdir: Path) -> None:
        with socket.socket() as s:
            s.bind((HOST, 0))
            self.port = s.getsockname()[1]
        cmd = [args.python, "-m", "oneshot", "demo", "--host", HOST, "--port", str(self.port)]
        cmd += ["--data-dir", args.data_dir] if args.data_dir else []
        cmd += ["--cache", args.cache] if args.cache else []
        self.log = workdir / f"server-{self.port}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=workdir, env=server_env(args), stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout: float) -> None:
        """Until GET /api/info answers 200 (RuntimeError with the log's tail otherwise)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.proc.poll() is None:
            try:
                if fetch(self.port, "GET", "/api/info")[0] == 200:
                    return
            except (OSError, ValueError, http.client.HTTPException):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"no demo server after {timeout:.0f} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        self.proc.terminate()  # nothing if it has exited
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class Sampler(threading.Thread):
    """The server's VmRSS every SAMPLE_SECONDS, its VmHWM; kills it past a limit or deadline."""

    def __init__(self, server: Server, limit_mb: float, deadline: float) -> None:
        super().__init__(daemon=True)
        self.server, self.limit_mb, self.deadline = server, limit_mb, deadline
        self.samples, self.hwm, self.killed, self.stopped = [], None, None, threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set() and "VmRSS" in (st := proc_mb(self.server.proc.pid)):
            rss, self.hwm = st["VmRSS"], st.get("VmHWM")
            self.samples.append(rss)
            if self.killed is None and (rss > self.limit_mb or time.monotonic() > self.deadline):
                self.killed = (f"RSS {rss:.0f} MB over the limit" if rss > self.limit_mb
                               else "past the deadline")
                self.server.proc.kill()
            self.stopped.wait(SAMPLE_SECONDS)


def post(conn: http.client.HTTPConnection, path: str, body: bytes, ctype: str) -> int:
    conn.request("POST", path, body, {"Content-Type": ctype})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def run_load(port: int, n: int, concurrency: int, send, deadline: float) -> tuple[list, float]:
    """``n`` calls ``send(conn, i) -> status`` on ``concurrency`` threads, each with its own
    keep-alive connection: ([(status or error name, seconds)], wall seconds)."""
    results: list[tuple[str, float]] = []
    todo = iter(range(n))
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=max(1.0, deadline - time.monotonic()))
        while time.monotonic() < deadline:
            with lock:
                i = next(todo, None)
            if i is None:
                break
            t0 = time.perf_counter()
            try:
                status = str(send(conn, i))
            except (OSError, http.client.HTTPException) as e:
                status = type(e).__name__
                conn.close()
            results.append((status, time.perf_counter() - t0))  # atomic
        conn.close()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: worker(), range(concurrency)))
    return results, time.perf_counter() - t0


def drawing_png(side: int, seed: int, strokes: int = 6) -> bytes:
    """A greyscale PNG, ``side`` pixels a side: a few thick random strokes on white."""
    rng = np.random.default_rng(seed)
    im = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(im)
    lo, hi = side // 12, side - side // 12
    for _ in range(strokes):
        pts = [tuple(int(v) for v in rng.integers(lo, hi, 2)) for _ in range(5)]
        draw.line(pts, fill=0, width=max(2, side // 100), joint="curve")
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body of PNG files under the field "image", and its type."""
    boundary = "oneshot-load-" + os.urandom(8).hex()
    parts = [(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
              f'filename="{name}"\r\nContent-Type: image/png\r\n\r\n').encode() + data + b"\r\n"
             for name, data in files]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def summary(results: list, wall: float, n: int) -> dict:
    secs = np.asarray([s for _, s in results] or [0.0]) * 1000
    return {"requests": n, "done": len(results), "statuses": dict(Counter(s for s, _ in results)),
            "p50_ms": float(np.percentile(secs, 50)), "p99_ms": float(np.percentile(secs, 99)),
            "max_ms": float(secs.max()), "wall_s": wall,
            "req_per_s": sum(s == "200" for s, _ in results) / wall if wall else 0.0}


def attack(server: Server, args, deadline: float, bodies: list) -> dict:
    """--rounds rounds of --concurrency concurrent uploads of one big PNG each."""
    results, t0 = [], time.perf_counter()
    for _ in range(args.rounds):
        results += run_load(server.port, args.concurrency, args.concurrency,
                            lambda conn, i: post(conn, "/api/support", *bodies[i]), deadline)[0]
    wall = time.perf_counter() - t0
    sizes = [len(body) // 1024 for body, _ in bodies]
    return {**summary(results, wall, args.rounds * args.concurrency),
            "body_kb": [min(sizes), max(sizes)]}


def fetch(port: int, method: str, path: str, body=None, ctype: str = "") -> tuple[int, dict]:
    """One request on a new connection: (status, JSON answer)."""
    with closing(http.client.HTTPConnection(HOST, port, timeout=120)) as conn:
        conn.request(method, path, body, {"Content-Type": ctype} if ctype else {})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())


def small_support(port: int) -> str:
    """The first test alphabet (its support set embedded now), or a small uploaded set."""
    status, data = fetch(port, "GET", "/api/alphabets")
    if status == 200 and data["alphabets"]:
        key = data["alphabets"][0]["name"]
        if fetch(port, "GET", f"/api/support/{key}")[0] == 200:
            return key
    files = [(f"class{k}.png", drawing_png(105, 100 + k)) for k in range(10)]
    status, data = fetch(port, "POST", "/api/support", *multipart(files))
    if status != 200:
        raise RuntimeError(f"no support set: upload answered {status}: {data}")
    return data["support"]


def small(server: Server, args, deadline: float, png: bytes) -> dict:
    """--requests classify requests of a 105x105 drawing at --concurrency."""
    key = small_support(server.port)
    url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    body = json.dumps({"support": key, "image": url, "top_k": 5}).encode()
    send = lambda conn, i: post(conn, "/api/classify", body, "application/json")  # noqa: E731
    run_load(server.port, 1, 1, send, deadline)  # warm-up
    return {**summary(*run_load(server.port, args.requests, args.concurrency, send, deadline),
                      args.requests), "support": key}


def scenario(name: str, args, workdir: Path) -> dict:
    """One scenario against a fresh server, stopped at the end whatever happens."""
    data = ([multipart([(f"big{k}.png", drawing_png(args.side, k))])
             for k in range(args.concurrency)] if name == "attack" else drawing_png(105, 7, 3))
    server = Server(args, workdir)
    try:
        server.wait_ready(args.startup_timeout)
        deadline = time.monotonic() + args.deadline
        sampler = Sampler(server, args.max_rss_gb * 1024, deadline)
        rss_before = proc_mb(server.proc.pid).get("VmRSS", 0.0)
        try:  # "5": reset the peak RSS (VmHWM) to the current RSS
            Path(f"/proc/{server.proc.pid}/clear_refs").write_text("5")
        except OSError:
            pass
        sampler.start()
        try:
            out = {"attack": attack, "small": small}[name](server, args, deadline, data)
        except (OSError, ValueError, KeyError, http.client.HTTPException, RuntimeError) as e:
            out = {"error": f"{type(e).__name__}: {e}"}
        sampler.stopped.set()
        sampler.join(5)
        out.update(rss_before_mb=rss_before, rss_peak_mb=max(sampler.samples, default=0.0),
                   vmhwm_mb=sampler.hwm, killed=sampler.killed)
        return out
    finally:
        server.stop()


def row(name: str, r: dict) -> list:
    statuses = r.get("error", "")[:80] or ", ".join(
        f"{k}: {v}" for k, v in sorted(r["statuses"].items()))
    statuses += f" (killed: {r['killed']})" if r.get("killed") else ""
    n = [f"{r[k]:.0f}" if k in r else "-" for k in ("p50_ms", "p99_ms", "req_per_s")]
    return [name, f"{r.get('done', '-')}/{r.get('requests', '-')}", f"{r['rss_before_mb']:.0f}",
            f"{r['rss_peak_mb']:.0f}", f"{r['vmhwm_mb'] or 0:.0f}", *n, statuses]


def main() -> None:
    p = parser(__doc__, "data", "json")
    p.add_argument("--python", default=sys.executable, help="the server's interpreter")
    p.add_argument("--src", help="put this folder first on the server's PYTHONPATH")
    p.add_argument("--scenarios", nargs="+", default=["attack", "small"],
                   choices=["attack", "small"])
    p.add_argument("--rounds", type=int, default=3, help="attack rounds (default 3)")
    p.add_argument("--concurrency", type=int, default=20, help="clients at once (default 20)")
    p.add_argument("--side", type=int, default=4096, help="attack PNG side (default 4096)")
    p.add_argument("--requests", type=int, default=500, help="small requests (default 500)")
    p.add_argument("--max-rss-gb", type=float, default=8.0, help="kill the server past this")
    p.add_argument("--deadline", type=float, default=120.0, help="seconds per scenario")
    p.add_argument("--startup-timeout", type=float, default=180.0, help="seconds")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="demo-load-") as tmp:
        module = subprocess.run(  # where the server's Python imports oneshot from
            [args.python, "-c", "import oneshot; print(oneshot.__file__)"], cwd=tmp,
            env=server_env(args), capture_output=True, text=True, timeout=120).stdout.strip()
        print(f"server imports {module or '(failed)'}", flush=True)
        results = {"server_module": module, "python": args.python, "src": args.src,
                   "loadavg": os.getloadavg(), "cpus": os.cpu_count()}
        for name in args.scenarios:
            results[name] = scenario(name, args, Path(tmp))
            print(f"{name}: {json.dumps(results[name])}", flush=True)
    results["loadavg_end"] = os.getloadavg()
    print(markdown_table(["scenario", "done", "RSS before MB", "RSS peak MB", "VmHWM MB",
                          "p50 ms", "p99 ms", "req/s (200s)", "statuses"],
                         [row(n, results[n]) for n in args.scenarios], align="lrrrrrrrl"))
    print(f"load average {results['loadavg']} -> {results['loadavg_end']}, {results['cpus']} CPUs")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
