"""The HTTP service (`python -m tagger.serve`), over real HTTP on loopback.

uvicorn runs the app on a thread of the test process; httpx sends the requests. One
server with the tiny model answers the route tests; the hot-swap tests start their own,
following a registry in tmp_path.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tagger.__main__ import tag_bio
from tagger.bio import parse_bio
from tagger.serve.__main__ import main
from tagger.serve.app import ServeSettings, create_app
from tagger.serve.model_watch import RegistryModel, ServedModel, open_served_model
from tagger.spans import Span
from tagger.tagger import Tagger
from tests.conftest import REPO_ROOT
from tests.helpers import is_valid_iob2
from tests.serve_helpers import serving
from tests.worker_helpers import clone_version

PROG = "python -m tagger.serve"
BIO_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "bio" / "canonical.tsv"
# Small limits, so that a body over them is small enough to send whole on loopback.
SETTINGS = ServeSettings(max_body_bytes=16_384, max_texts=20, batch_wait_s=0.02)
TEXTS = [
    "Cocaine induced seizures in two patients. No hypotension was seen.",
    "patients developed renal failure after cisplatin .",
    "Naïve café — lithium induced hepatitis 🙂 and cardiac arrhythmia.",
    "",
]
NATIVE_LOG = re.compile(r"^(WARNING: All log messages before absl|[IWEF]\d{4} )")


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


class CountingTagger:
    """The tiny tagger, counting its `tag_many` calls: the batching is what is counted."""

    def __init__(self, tagger: Tagger) -> None:
        self._tagger = tagger
        self.tag_many_calls = 0

    def tag_many(self, texts: Sequence[str]) -> list[list[Span]]:
        self.tag_many_calls += 1
        return self._tagger.tag_many(texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tagger, name)


@pytest.fixture(scope="module")
def tagger(tiny_model_dir: Path) -> Tagger:
    return Tagger.load(tiny_model_dir)


@pytest.fixture(scope="module")
def counting(tagger: Tagger) -> CountingTagger:
    return CountingTagger(tagger)


@pytest.fixture(scope="module")
def url(counting: CountingTagger) -> Iterator[str]:
    with serving(create_app(ServedModel(counting), SETTINGS)) as base:  # type: ignore[arg-type]
        yield base


def spans_as_json(spans: list[Span]) -> list[dict[str, Any]]:
    return [asdict(span) for span in spans]


def same_spans(served: list[dict[str, Any]], direct: list[Span]) -> bool:
    """Equal spans; scores up to float rounding (a batch shared with others pads otherwise)."""
    expected = spans_as_json(direct)
    return [{**s, "score": round(s["score"], 4)} for s in served] == [
        {**s, "score": round(s["score"], 4)} for s in expected
    ]


# ---------------------------------------------------------------- routes


def test_health_names_the_version_and_how_it_is_served(url: str, tagger: Tagger) -> None:
    reply = httpx.get(f"{url}/health")
    assert reply.status_code == 200
    assert reply.json() == {
        "status": "ok",
        "model": tagger.version,
        "serving": tagger.describe_serving(),
        "serving_note": None,
        "follows_registry": False,
        "problem": None,
    }


def test_tag_gives_character_offsets_into_each_text_as_tag_many_does(
    url: str, tagger: Tagger
) -> None:
    reply = httpx.post(f"{url}/tag", json={"texts": TEXTS})
    assert reply.status_code == 200, reply.text
    content = reply.json()
    assert content["model"] == tagger.version
    assert len(content["results"]) == len(TEXTS)
    direct = tagger.tag_many(TEXTS)
    found = 0
    for text, result, expected in zip(TEXTS, content["results"], direct, strict=True):
        for span in result["spans"]:
            assert text[span["start"] : span["end"]] == span["text"]
            assert span["label"] == "Disease" and 0 <= span["score"] <= 1
        assert same_spans(result["spans"], expected)
        found += len(result["spans"])
    assert found, "the tiny model finds a mention in these texts, so offsets are checked"
    assert content["results"][-1] == {"spans": []}  # the empty text


def test_no_texts_is_no_results(url: str) -> None:
    reply = httpx.post(f"{url}/tag", json={"texts": []})
    assert reply.status_code == 200 and reply.json()["results"] == []


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"texts: [fever]", "the body is not JSON (Expecting value at line 1 column 1)"),
        (b'["fever"]', "the body is a list, not an object with texts"),
        (b'{"text": "fever"}', "the body has no \"texts\" (it has 'text')"),
        (b'{"texts": "fever"}', '"texts" is a string, not a list'),
        (b'{"texts": ["fever", null]}', "texts[1] is null, not a string"),
        (b'{"texts": ["\\ud83d"]}', "texts[0] has half of a UTF-16 pair (\\ud83d) at character 0"),
        (b'{"texts": ["caf\xe9"]}', "the body is not UTF-8 (invalid continuation byte"),
    ],
)
def test_a_body_that_is_not_texts_is_a_422_saying_what_and_how_to_fix(
    url: str, body: bytes, what: str
) -> None:
    reply = httpx.post(f"{url}/tag", content=body)
    assert reply.status_code == 422
    error = reply.json()
    assert error["where"] == "POST /tag" and error["what"].startswith(what)
    assert error["detail"] == f"POST /tag: {error['what']}. Fix: {error['fix']}."


def test_tag_bio_labels_every_word_as_the_command_line_does(url: str, tagger: Tagger) -> None:
    data = BIO_FIXTURE.read_bytes()
    reply = httpx.post(f"{url}/tag-bio", content=data, headers={"Content-Type": "text/plain"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    assert reply.headers["x-model-version"] == tagger.version
    sent, answered = parse_bio(data), parse_bio(reply.text)
    assert [s.words for s in answered] == [s.words for s in sent]
    for sentence in answered:
        assert set(sentence.labels) <= set(tagger.labels) and is_valid_iob2(sentence.labels)
    assert reply.text == tag_bio(tagger, data, "request body")


def test_a_malformed_bio_body_is_a_422_naming_the_line(url: str) -> None:
    body = b"Heart\tB-Disease\nfailure\n.\tO\n"
    reply = httpx.post(f"{url}/tag-bio", content=body)
    assert reply.status_code == 422
    error = reply.json()
    assert error["where"] == "request body:2"
    assert error["detail"].startswith(
        "request body:2: expected a token and a label, got one column 'failure'. "
        "Write one `token<TAB>label` per line"
    )


def test_json_sent_to_tag_bio_says_to_send_the_file(url: str) -> None:
    reply = httpx.post(f"{url}/tag-bio", json={"bio": "Heart\tO\n"})
    assert reply.status_code == 422
    assert "send the BIO file itself as the body" in reply.json()["fix"]


# ---------------------------------------------------------------- limits


def assert_body_too_large(reply: httpx.Response, route: str) -> None:
    assert reply.status_code == 413, reply.text
    error = reply.json()
    assert error["where"] == route
    assert error["what"] == "the request body is over the limit of 16384 bytes (16 KiB)"
    assert "several requests" in error["fix"] and "--max-body-bytes" in error["fix"]


@pytest.mark.parametrize("route", ["/tag", "/tag-bio"])
def test_a_body_declared_over_the_limit_is_a_413(url: str, route: str) -> None:
    body = json.dumps({"texts": ["fever " * 3000]}).encode()
    reply = httpx.post(f"{url}{route}", content=body, headers={"Content-Type": "text/plain"})
    assert_body_too_large(reply, f"POST {route}")


def test_a_streamed_body_without_a_length_is_cut_off_at_the_limit(url: str) -> None:
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        yield b'{"texts": ["'
        for _ in range(6):
            sent.append(4096)
            yield b"f" * 4096
        yield b'"]}'

    request = httpx.Request("POST", f"{url}/tag", content=chunks())
    assert "content-length" not in request.headers  # chunked: only counting can stop it
    with httpx.Client() as client:
        reply = client.send(request)
    assert_body_too_large(reply, "POST /tag")


def test_more_texts_than_the_limit_is_a_413_saying_how_to_split(url: str) -> None:
    reply = httpx.post(f"{url}/tag", json={"texts": ["fever"] * 21})
    assert reply.status_code == 413
    assert reply.json()["detail"] == (
        "POST /tag: the request has 21 texts, over the limit of 20 per request. Fix: send the "
        "texts in several requests of at most 20 each, or start the service with a larger "
        "--max-texts."
    )


# ---------------------------------------------------------------- batching


def test_concurrent_requests_are_tagged_together_and_each_gets_its_own_answer(
    url: str, tagger: Tagger, counting: CountingTagger
) -> None:
    texts = [f"patients developed {d} after cocaine ." for d in ("seizures", "hepatitis")] * 8
    texts = [f"{text} Case {index}." for index, text in enumerate(texts)]
    start = threading.Barrier(len(texts))
    replies: dict[int, httpx.Response] = {}

    def post(index: int) -> None:
        with httpx.Client() as client:
            start.wait()
            replies[index] = client.post(f"{url}/tag", json={"texts": [texts[index]]})

    calls_before = counting.tag_many_calls
    threads = [threading.Thread(target=post, args=(index,)) for index in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    calls = counting.tag_many_calls - calls_before
    direct = tagger.tag_many(texts)
    for index, text in enumerate(texts):
        assert replies[index].status_code == 200, replies[index].text
        (result,) = replies[index].json()["results"]
        assert same_spans(result["spans"], direct[index]), text
    assert calls < len(texts), f"{len(texts)} requests took {calls} tag_many calls"


# ---------------------------------------------------------------- following the registry


def write_pointer(registry: Path, version: str) -> None:
    """Promote `version` as the registry does: a whole new pointer file, renamed in place."""
    staging = registry / ".current.tmp"
    staging.write_text(version + "\n", encoding="utf-8")
    os.replace(staging, registry / "current")


@pytest.fixture
def registry(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A registry with versions v1 and v2 (copies of the tiny model), v1 in service."""
    root = tmp_path / "registry"
    for version in ("v1", "v2"):
        clone_version(tiny_model_dir, root / "versions", version)
    write_pointer(root, "v1")
    return root


class GatedLoader:
    """`Tagger.load`, but every load after the first waits until the test opens the gate."""

    def __init__(self) -> None:
        self.folders: list[Path] = []
        self.loading = threading.Event()
        self.gate = threading.Event()

    def __call__(self, folder: Path) -> Tagger:
        self.folders.append(folder)
        if len(self.folders) > 1:
            self.loading.set()
            assert self.gate.wait(timeout=30)
        return Tagger.load(folder)


def health(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/health").json()


def test_a_newly_promoted_version_is_swapped_in_while_requests_are_answered(
    registry: Path,
) -> None:
    loader = GatedLoader()
    served = RegistryModel(registry, loader, poll_interval_s=0.05)
    with serving(create_app(served, SETTINGS)) as url:
        assert health(url)["model"] == "v1" and health(url)["follows_registry"] is True
        write_pointer(registry, "v2")
        assert loader.loading.wait(timeout=10), "the new version in service was not noticed"
        during = httpx.post(f"{url}/tag", json={"texts": [TEXTS[0]]})
        assert during.status_code == 200 and during.json()["model"] == "v1"
        loader.gate.set()
        assert wait_until(lambda: health(url)["model"] == "v2", timeout_s=10)
        after = httpx.post(f"{url}/tag", json={"texts": [TEXTS[0]]})
        assert after.json()["model"] == "v2" and health(url)["problem"] is None
    assert loader.folders == [registry / "versions" / "v1", registry / "versions" / "v2"]


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(
    registry: Path, tiny_model_dir: Path
) -> None:
    broken = registry / "versions" / "v3"
    broken.mkdir()
    (broken / "model.json").write_bytes((tiny_model_dir / "model.json").read_bytes())
    served = RegistryModel(registry, poll_interval_s=0.05)
    with serving(create_app(served, SETTINGS)) as url:
        write_pointer(registry, "v3")
        assert wait_until(lambda: health(url)["problem"] is not None)
        status = health(url)
        assert status["model"] == "v1" and status["status"] == "ok"
        assert status["problem"].startswith("version v3 is in service but could not be loaded: ")
        assert "incomplete model folder, missing vocab.txt, model.weights.h5" in status["problem"]
        assert status["problem"].endswith("; still serving version v1, loaded before")
        reply = httpx.post(f"{url}/tag", json={"texts": [TEXTS[0]]})
        assert reply.status_code == 200 and reply.json()["model"] == "v1"
        write_pointer(registry, "v2")  # the curator promotes a good version: served, and well
        assert wait_until(lambda: health(url)["model"] == "v2")
        assert health(url)["problem"] is None


def test_only_current_follows_the_registry_a_version_or_folder_is_fixed(registry: Path) -> None:
    def load(folder: Path) -> Any:
        return folder  # which folder would be loaded is all this test needs

    for reference in (None, "current"):
        followed = open_served_model(reference, load, registry=registry)
        assert isinstance(followed, RegistryModel) and followed.follows_registry
        assert followed.tagger == registry / "versions" / "v1"
    for reference in ("v2", registry / "versions" / "v2"):
        fixed = open_served_model(reference, load, registry=registry)
        assert type(fixed) is ServedModel and not fixed.follows_registry
        assert fixed.tagger == registry / "versions" / "v2"


# ---------------------------------------------------------------- the command line


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_missing_model_is_one_error_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(["--model", str(tmp_path / "nope"), "--port", "0"], capsys)
    assert code == 2 and not out and err.count("\n") == 1
    assert err.startswith(f"{PROG}: error: no model folder {tmp_path / 'nope'}. Fix: ")


def test_nothing_in_service_is_one_error_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAGGER_REGISTRY_DIR", str(tmp_path / "empty"))
    code, _, err = run_main(["--port", "0"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"{PROG}: error: no model is in service: ")


def test_a_port_in_use_is_one_error_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code, _, err = run_main(["--model", str(tmp_path), "--port", str(port)], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"{PROG}: error: --host/--port: cannot listen on 127.0.0.1:{port} (")
    assert "Fix: pass another --port" in err


@pytest.mark.parametrize(
    ("flag", "value"), [("--max-texts", "0"), ("--poll-seconds", "0"), ("--port", "70000")]
)
def test_a_bad_limit_is_one_error_line_and_exit_2(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main([flag, value], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"{PROG}: error: argument {flag}: expected ")


def test_the_command_line_serves_until_interrupted(tiny_model_dir: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tagger.serve", "--model", str(tiny_model_dir), "--port", "0"],
        cwd=REPO_ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        lines = _lines_until(process.stderr, r"serving model \S+ on (http://127\.0\.0\.1:\d+)")
        started = re.search(r"on (http://127\.0\.0\.1:\d+)", lines[-1])
        assert started, "".join(lines)
        url = started.group(1)
        assert httpx.get(f"{url}/health").json()["model"] == Tagger.load(tiny_model_dir).version
        reply = httpx.post(f"{url}/tag", json={"texts": [TEXTS[0]]})
        assert reply.status_code == 200 and len(reply.json()["results"]) == 1
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=30)
        assert process.returncode in (0, 130), rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in "".join(lines) + rest


def _lines_until(stream: IO[str], pattern: str, timeout_s: float = 120) -> list[str]:
    """Lines read from ``stream`` up to one matching ``pattern``; fails after ``timeout_s``."""
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in stream:
            lines.append(line)
            if re.search(pattern, line):
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(timeout_s):
        pytest.fail(f"no line matching {pattern!r} within {timeout_s} s:\n{''.join(lines)}")
    return lines
