"""AppTest: the Inspect page scores a BIO file, lists errors and refuses bad files clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app_fakes import FakeTagger, make_app, shown

# The fake tagger finds "failure" alone (not "Chronic renal failure"), "fever", "Obesity"
# and "hypertension": 3 of 4 file mentions exactly, plus 1 extra, so P = R = F1 = 75%.
FILE = (
    b"Chronic\tB-Disease\nrenal\tI-Disease\nfailure\tI-Disease\nand\tO\nfever\tB-Disease\n.\tO\n\n"
    b"No\tO\nsymptoms\tO\n.\tO\n\n"
    b"Obesity\tB-Disease\nand\tO\nhypertension\tB-Disease\n.\tO\n\n"
)


class CountingFactory:
    """Builds fake taggers and keeps them, so a test can count how often they tagged."""

    def __init__(self) -> None:
        self.built: list[FakeTagger] = []

    def __call__(self, model_dir: Path) -> FakeTagger:
        self.built.append(FakeTagger.load(model_dir))
        return self.built[-1]

    @property
    def calls(self) -> int:
        return sum(tagger.calls for tagger in self.built)


def inspect_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: object) -> AppTest:
    app = make_app(tmp_path, monkeypatch, **options).run()  # type: ignore[arg-type]
    return app.switch_page("app/page_inspect.py").run()


def upload(app: AppTest, name: str, data: bytes) -> AppTest:
    app.file_uploader(key="inspect_upload").set_value((name, data, "text/tab-separated-values"))
    return app.run()


def metrics(app: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


def test_an_uploaded_file_is_scored_against_its_own_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = CountingFactory()
    app = upload(inspect_page(tmp_path, monkeypatch, factory=factory), "fixture.tsv", FILE)
    assert not app.exception
    assert metrics(app) == {
        "Precision": "75.0%",
        "Recall": "75.0%",
        "F1": "75.0%",
        "Sentences": "3",
        "Disagree": "1",
    }
    sentences, errors = app.dataframe[0].value, app.dataframe[1].value
    assert list(sentences["sentence"]) == [1]  # only the disagreeing sentence by default
    assert sorted(zip(errors["error"], errors["mention"], errors["line"], strict=True)) == [
        ("false negative", "Chronic renal failure", 1),
        ("false positive", "failure", 3),
    ]
    app.toggle(key="inspect_only_disagreeing").set_value(False).run()
    assert list(app.dataframe[0].value["sentence"]) == [1, 2, 3]
    app.multiselect(key="inspect_error_kinds").set_value(["False positives"]).run()
    assert list(app.dataframe[1].value["mention"]) == ["failure"]
    assert factory.calls == 1  # filters reuse the result: the file is tagged once


def test_the_page_shows_the_numbers_of_training_evaluate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tagger.bio import parse_bio
    from tests.app_fakes import fake_labels
    from training.evaluate import entity_scores

    sentences = parse_bio(FILE.decode())
    cli = entity_scores(
        [s.labels for s in sentences], [fake_labels(s.words)[0] for s in sentences]
    )
    app = upload(inspect_page(tmp_path, monkeypatch), "fixture.tsv", FILE)
    shown_metrics = metrics(app)
    for label, key in (("Precision", "precision"), ("Recall", "recall"), ("F1", "f1")):
        assert shown_metrics[label] == f"{cli[key]:.1f}%"
    assert app.metric[0].help.startswith("Strict entity-level (seqeval, IOB2)")


@pytest.mark.parametrize(
    ("data", "expected", "why"),
    [
        # no mention in the file and none predicted: nothing to compare
        (b"No\tO\nsymptoms\tO\n.\tO\n\n", ("—", "—", "—"), "neither the file nor the model"),
        # the model finds "fever", the file has no mention: no recall, but wrong all the same
        (b"No\tO\nfever\tO\n.\tO\n\n", ("0.0%", "—", "0.0%"), "the file has no mention"),
        # the file has a mention the model misses: nothing predicted, no precision
        (b"Gout\tB-Disease\n.\tO\n\n", ("—", "0.0%", "0.0%"), "predicted no mention"),
    ],
)
def test_an_undefined_score_shows_a_dash_and_says_why(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    data: bytes,
    expected: tuple[str, str, str],
    why: str,
) -> None:
    app = upload(inspect_page(tmp_path, monkeypatch), "none.tsv", data)
    assert not app.exception
    shown_metrics = metrics(app)
    assert (shown_metrics["Precision"], shown_metrics["Recall"], shown_metrics["F1"]) == expected
    helps = [metric.help for metric in app.metric if metric.value == "—"]
    assert helps and all(help.startswith("Undefined: ") for help in helps)
    assert any(why in help for help in helps)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("binary.tsv", b"Fever\tO\n\x00\x01\x02\x89PNG", "binary.tsv:2: the file contains NUL"),
        ("latin1.tsv", b"Fever\tO\ncaf\xe9\tO\n", "latin1.tsv:2: the file is not valid UTF-8"),
        (
            "columns.tsv",
            b"Fever\tB-Disease\ncough\n",
            "columns.tsv:2: expected a token and a label",
        ),
        (
            "labels.tsv",
            b"Fever\tO\n\nrash\tB-Chemical\n",
            "labels.tsv:3: unknown label 'B-Chemical'",
        ),
        ("empty.tsv", b"\n\n", "empty.tsv: the file is empty"),
    ],
)
def test_a_bad_file_gives_a_clear_message_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, data: bytes, message: str
) -> None:
    app = upload(inspect_page(tmp_path, monkeypatch), name, data)
    assert not app.exception
    assert len(app.error) == 1
    assert shown(app.error[0].value).startswith(f"Cannot read {message}")
    upload(app, "fixture.tsv", FILE)  # the app is still up and works
    assert metrics(app)["F1"] == "75.0%"


def test_a_file_past_the_upload_limit_is_refused_with_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = inspect_page(tmp_path, monkeypatch, env={"TAGGER_MAX_UPLOAD_MB": "1"})
    upload(app, "big.tsv", FILE * 40_000)  # about 5 MB
    assert not app.exception
    assert "the upload limit is 1 MB" in shown(app.error[0].value)


def test_iob1_labels_are_repaired_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = upload(inspect_page(tmp_path, monkeypatch), "iob1.tsv", b"heart\tI-Disease\n.\tO\n")
    assert not app.exception
    assert any("repaired 1 IOB1 label" in shown(info.value) for info in app.info)


def test_a_test_set_sized_file_is_tagged_once_and_stays_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = CountingFactory()
    app = upload(inspect_page(tmp_path, monkeypatch, factory=factory), "big.tsv", FILE * 1_600)
    assert not app.exception
    assert metrics(app)["Sentences"] == "4,800"
    assert metrics(app)["Disagree"] == "1,600"
    app.toggle(key="inspect_only_disagreeing").set_value(False).run()
    assert len(app.dataframe[0].value) == 4_800
    assert factory.calls == 1


def test_the_file_is_tagged_in_one_call_with_progress_per_batch(tiny_model_dir: Path) -> None:
    """The page's function hands the tagger every sentence at once, as the library is
    benchmarked, and reports progress per batch of windows, not per sentence."""
    from app.tagging import tag_file
    from tagger import Tagger
    from tagger.bio import parse_bio

    tagger = Tagger.load(tiny_model_dir, runtime="keras", precision="float32")
    sentences = parse_bio(FILE.decode()) * 60  # 180 sentences
    calls: list[tuple[int, int]] = []
    result = tag_file(
        tagger, sentences, file_name="f.tsv", digest="d", progress=lambda *c: calls.append(c)
    )
    expected = tagger.tag_words([s.words for s in sentences])
    assert list(result.predicted) == [labels for labels, _ in expected]
    assert [list(scores) for scores in result.scores] == [list(s) for _, s in expected]
    batches = calls[-1][1]
    assert calls == [(done, batches) for done in range(1, batches + 1)]
    assert batches < len(sentences) / 10  # a batch holds many sentences


def test_the_app_server_does_not_watch_source_files() -> None:
    """Streamlit's default watcher re-walks the whole repository (.venv included) and
    took most of a core on 2 cores, slowing tagging (see .streamlit/config.toml)."""
    import tomllib

    config = Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml"
    settings = tomllib.loads(config.read_text(encoding="utf-8"))
    assert settings["server"]["fileWatcherType"] == "none"
