"""The HTTP tagging service under load: requests/s and latency at 1, 4 and 16 clients.

Starts ``python -m tagger.serve --model MODEL --port 0`` on 127.0.0.1 (the command a
user runs), waits for its "serving model ... on URL" line, then for each client count
runs that many client threads for ``--seconds``, each sending ``POST /tag`` with one
abstract per request (the way an annotation tool asks for one document), back to back.
Abstracts are built from the shared unlabeled corpus as in
:mod:`benchmarks.batch_throughput`; every client walks them from its own offset, so
requests differ. A latency is from sending a request to its parsed answer; the first
``--warmup`` requests of each level are not counted. Clients run on the same cores as
the service (the machine has no other), so the figures include their cost.

Usage::

    python -m benchmarks.http_service --model models/first \\
        --corpus $PUBMED_SENTENCES --out benchmarks/results/http_raw.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from benchmarks.batch_throughput import build_abstracts, describe_model
from tagger.model_folder import read_metadata
from tagger.references import resolve_model

REPO = Path(__file__).resolve().parent.parent
CLIENT_COUNTS = (1, 4, 16)
READY = re.compile(r"serving model \S+ on (http://\S+)")
STARTUP_TIMEOUT_S = 300.0


def start_service(model: Path, extra: Sequence[str]) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "tagger.serve", "--model", str(model), "--port", "0"]
    command += [*extra, "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    found: list[str] = []

    def read(stream: IO[str]) -> None:
        for line in stream:
            match = READY.search(line)
            if match and not found:
                found.append(match.group(1))

    threading.Thread(target=read, args=(process.stderr,), daemon=True).start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not found:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"the service did not start: {' '.join(command)}")
        time.sleep(0.1)
    return process, found[0]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def load_level(
    url: str, texts: list[str], clients: int, seconds: float, warmup: int
) -> dict[str, Any]:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start_barrier = threading.Barrier(clients + 1)
    stop_at = [float("inf")]  # set once every client has warmed up

    def client(number: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as session:
            position = number * len(texts) // clients
            for _ in range(warmup):
                session.post("/tag", json={"texts": [texts[position % len(texts)]]})
                position += 1
            start_barrier.wait()
            while time.perf_counter() < stop_at[0]:
                sent = time.perf_counter()
                reply = session.post("/tag", json={"texts": [texts[position % len(texts)]]})
                if reply.status_code != 200 or len(reply.json()["results"]) != 1:
                    errors[number] += 1
                latencies[number].append(time.perf_counter() - sent)
                position += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    start_barrier.wait()
    started = time.perf_counter()
    stop_at[0] = started + seconds
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started  # to the last answer, past the stop time
    every = [latency for own in latencies for latency in own]
    return {
        "clients": clients,
        "requests": len(every),
        "errors": sum(errors),
        "seconds": elapsed,
        "requests_per_s": len(every) / elapsed,
        "p50_ms": 1000 * statistics.median(every),
        "p95_ms": 1000 * percentile(every, 0.95),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True, help="sentences.txt")
    parser.add_argument("--seconds", type=float, default=60.0, help="per client count")
    parser.add_argument("--warmup", type=int, default=2, help="requests per client, uncounted")
    parser.add_argument("--abstracts", type=int, default=500)
    parser.add_argument("--abstract-words", type=int, default=200)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    abstracts = build_abstracts(args.corpus, args.abstracts, args.abstract_words)
    texts = [f"{a['title']}\n\n{a['text']}" for a in abstracts]
    process, url = start_service(args.model, [])
    try:
        health = httpx.get(f"{url}/health", timeout=60).json()
        levels = []
        for clients in CLIENT_COUNTS:
            level = load_level(url, texts, clients, args.seconds, args.warmup)
            print(
                f"{clients} clients: {level['requests_per_s']:.2f} requests/s, p50 "
                f"{level['p50_ms']:.0f} ms, p95 {level['p95_ms']:.0f} ms",
                flush=True,
            )
            levels.append(level)
    finally:
        process.terminate()
        process.wait(timeout=60)
    measured = {
        "model": str(args.model),
        "model_version": read_metadata(resolve_model(args.model)).version,
        "model_facts": describe_model(resolve_model(args.model)),
        "serving": health["serving"],
        "mean_words_per_request": statistics.fmean(len(t.split()) for t in texts),
        "seconds_per_level": args.seconds,
        "cores": len(os.sched_getaffinity(0)),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "levels": levels,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(measured, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
