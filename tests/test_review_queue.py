"""The review queue: doubt order, filters, claims (never two curators on one item),
resuming after a restart, the diversity rule, accept/save as corrections, skip, flag,
release, progress, and pending marks that survive re-tagging.

Every test runs on SQLite and on PostgreSQL (tests/databases.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

import pytest

from curation.collections import CollectionStore, DocumentToTag, PredictedSentence
from curation.corrections import CorrectionsStore
from curation.database import Database
from curation.review import (
    DIVERSITY_THRESHOLD,
    ReviewConflictError,
    ReviewError,
    ReviewFilter,
    ReviewItem,
    ReviewProgress,
    ReviewQueue,
    jaccard,
    shingles,
)
from tests.collection_helpers import FakeClock, fake_sentences, jsonl, serve_version


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(database: Database, clock: FakeClock) -> CollectionStore:
    return CollectionStore(database, clock=clock)


@pytest.fixture
def queue(database: Database, clock: FakeClock) -> ReviewQueue:
    return ReviewQueue(database, CorrectionsStore(database, clock=clock), clock=clock)


def import_texts(store: CollectionStore, texts: dict[str, str], name: str = "c") -> None:
    records = [{"id": key, "text": text} for key, text in texts.items()]
    report = store.import_files(name, [("a.jsonl", jsonl(records))], imported_by="ada")
    assert report.problems == ()


def tag_with_doubt(
    store: CollectionStore, version: str, doubt: Callable[[DocumentToTag], float]
) -> None:
    """Tag every pending document; its expected word errors are ``doubt(document)``."""
    for document in store.documents_to_tag(version, 1000):
        sentences = fake_sentences(document)
        n_words = sum(len(s.words) for s in sentences)
        share = doubt(document) / n_words
        spread = [replace(s, scores=tuple(1.0 - share for _ in s.words)) for s in sentences]
        assert store.store_tags(document.id, version, spread)


def doubt_from_text(document: DocumentToTag) -> float:
    """The number after "doubt" in the text: the test says how doubtful each item is."""
    words = (document.text or "").split()
    return float(words[words.index("doubt") + 1])


def walk(queue: ReviewQueue, curator: str, where: ReviewFilter) -> list[ReviewItem]:
    """Every item the curator is served until the queue is empty, each accepted."""
    served = []
    while (item := queue.next_item(curator, where)) is not None:
        served.append(item)
        queue.accept(item.id, curator)
    return served


def test_items_come_most_doubtful_first_and_skipped_ones_last(
    store: CollectionStore, queue: ReviewQueue
) -> None:
    import_texts(
        store,
        {
            "low": "Fever was low , doubt 1 .",
            "high": "Renal failure after lithium , doubt 3 .",
            "mid": "Seizures in two patients , doubt 2 .",
        },
    )
    serve_version(store.database, "v1")
    tag_with_doubt(store, "v1", doubt_from_text)
    where = ReviewFilter("c")
    first = queue.next_item("ada", where)
    assert first is not None and first.external_id == "high"
    assert first.uncertainty == pytest.approx(3.0)
    queue.skip(first.id, "ada")
    order = [item.external_id for item in walk(queue, "ada", where)]
    assert order == ["mid", "low", "high"]  # the skipped one after every unreviewed one
    assert queue.progress("c") == ReviewProgress(reviewed=3, skipped=0, flagged=0, total=3)
    assert queue.next_item("ada", replace(where, include_skipped=False)) is None


def test_filters_on_doubt_and_predicted_spans(store: CollectionStore, queue: ReviewQueue) -> None:
    import_texts(
        store,
        {"a": "Fever seen , doubt 1 .", "b": "Nothing seen , doubt 2 .", "c": "Fever , doubt 4 ."},
    )
    serve_version(store.database, "v1")
    tag_with_doubt(store, "v1", doubt_from_text)

    def ids(**filters: object) -> list[str]:
        where = ReviewFilter("c", **filters)  # type: ignore[arg-type]
        served = []
        while (item := queue.next_item("ada", where)) is not None:
            served.append(item.external_id)
            queue.skip(item.id, "ada")
            where = replace(where, include_skipped=False)
        for item_id in (1, 2, 3):  # back to unreviewed for the next question
            with store.database.write() as connection:
                connection.exec_driver_sql(
                    f"UPDATE collection_documents SET status = 'unreviewed' WHERE id = {item_id}"
                )
        return served

    assert ids(min_score=1.5) == ["c", "b"]
    assert ids(max_score=1.5) == ["a"]
    assert ids(has_spans=True) == ["c", "a"]
    assert ids(has_spans=False) == ["b"]


def test_a_restarted_app_resumes_at_the_held_item(
    database: Database, store: CollectionStore, queue: ReviewQueue, clock: FakeClock
) -> None:
    import_texts(store, {"1": "Fever , doubt 2 .", "2": "Fever , doubt 1 ."})
    serve_version(database, "v1")
    tag_with_doubt(store, "v1", doubt_from_text)
    first = queue.next_item("ada", ReviewFilter("c"))
    assert first is not None
    clock.advance(queue.claim_ttl_s - 10)
    restarted = ReviewQueue(database, CorrectionsStore(database), clock=clock)
    again = restarted.next_item("ada", ReviewFilter("c"))
    assert again is not None and again.id == first.id
    clock.advance(queue.claim_ttl_s - 10)  # the resume renewed the claim: still held
    other = restarted.next_item("bo", ReviewFilter("c"))
    assert other is not None and other.id != first.id


def test_a_lapsed_claim_goes_to_another_curator_and_the_first_cannot_store(
    store: CollectionStore, queue: ReviewQueue, clock: FakeClock
) -> None:
    import_texts(store, {"1": "Fever , doubt 2 ."})
    serve_version(store.database, "v1")
    tag_with_doubt(store, "v1", doubt_from_text)
    held = queue.next_item("ada", ReviewFilter("c"))
    assert held is not None
    assert queue.next_item("bo", ReviewFilter("c")) is None  # ada holds the only item
    clock.advance(queue.claim_ttl_s + 1)
    taken = queue.next_item("bo", ReviewFilter("c"))
    assert taken is not None and taken.id == held.id
    with pytest.raises(ReviewConflictError, match="held by another curator") as raised:
        queue.accept(held.id, "ada")
    assert "reload the Review page" in str(raised.value)
    assert queue.corrections.count(current_only=False) == 0  # rolled back with the status
    queue.accept(taken.id, "bo")
    assert queue.corrections.current()[0].annotator == "bo"


def test_two_curators_at_once_never_get_the_same_item(
    database: Database, store: CollectionStore
) -> None:
    import_texts(store, {str(n): f"Patient {n} had fever , doubt {n % 7} ." for n in range(24)})
    serve_version(database, "v1")
    tag_with_doubt(store, "v1", doubt_from_text)
    served: dict[str, list[int]] = {"ada": [], "bo": []}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def review(curator: str) -> None:
        queue = ReviewQueue(database, CorrectionsStore(database))  # its own connections
        barrier.wait()
        try:
            while (item := queue.next_item(curator, ReviewFilter("c"))) is not None:
                served[curator].append(item.id)
                queue.accept(item.id, curator)
        except BaseException as error:  # collected: a thread's exception is otherwise lost
            errors.append(error)

    threads = [threading.Thread(target=review, args=(name,)) for name in served]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert not set(served["ada"]) & set(served["bo"])
    assert sorted(served["ada"] + served["bo"]) == list(range(1, 25))
    corrections = CorrectionsStore(database).current()
    assert len(corrections) == 24 == len({c.source for c in corrections})


def test_accept_and_save_store_every_sentence_as_the_correct_page_does(
    store: CollectionStore, queue: ReviewQueue
) -> None:
    report = store.import_files(
        "pubmed",
        [("a.txt", b"Renal failure\n\nFever after lithium. No seizures were seen.")],
        imported_by="ada",
    )
    assert report.added == 1
    serve_version(store.database, "v1")
    tag_with_doubt(store, "v1", lambda _d: 1.0)
    item = queue.next_item("ada", ReviewFilter("pubmed"))
    assert item is not None and item.title == "Renal failure"
    assert [s.words for s in item.sentences] == [
        ("Renal", "failure", "Fever", "after", "lithium", "."),
        ("No", "seizures", "were", "seen", "."),
    ]
    edited = [
        ("B-Disease", "I-Disease", "B-Disease", "O", "O", "O"),
        ("O", "I-Disease", "O", "O", "O"),  # an IOB1 slip: repaired to B-
    ]
    saved = queue.save(item.id, "ada", edited)
    assert saved.status == "reviewed" and saved.reviewer == "ada"
    corrections = queue.corrections.current()
    assert [(c.source, c.sentence_index) for c in corrections] == [
        ("collection:pubmed/a", 0),
        ("collection:pubmed/a", 1),
    ]
    assert corrections[0].labels == edited[0]
    assert corrections[1].labels == ("O", "B-Disease", "O", "O", "O")
    assert corrections[0].predicted == item.sentences[0].predicted
    assert {(c.model_version, c.annotator) for c in corrections} == {("v1", "ada")}
    (exported,) = queue.reviewed_items("pubmed")
    assert [s.labels for s in exported.sentences] == [c.labels for c in corrections]
    assert queue.next_item("ada", ReviewFilter("pubmed")) is None  # the claim is released


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([["O"] * 4], "item pubmed/a: 1 label sequences were given for 2 sentences"),
        ([["O"] * 4, ["O"] * 4], "item pubmed/a, sentence 2: 4 labels were given for 5 words"),
        ([["O"] * 4, ["O", "B-Chemical", "O", "O", "O"]], "item pubmed/a, sentence 2: .*unknown"),
    ],
)
def test_bad_labels_are_refused_naming_the_sentence_and_nothing_is_stored(
    store: CollectionStore, queue: ReviewQueue, labels: list[list[str]], message: str
) -> None:
    store.import_files(
        "pubmed", [("a.txt", b"Fever after lithium. No seizures were seen.")], imported_by="ada"
    )
    serve_version(store.database, "v1")
    tag_with_doubt(store, "v1", lambda _d: 1.0)
    item = queue.next_item("ada", ReviewFilter("pubmed"))
    assert item is not None
    with pytest.raises(ReviewError, match=message) as raised:
        queue.save(item.id, "ada", labels)
    assert "Fix:" in str(raised.value)
    assert queue.corrections.count(current_only=False) == 0
    assert queue.item(item.id).status == "unreviewed"


def test_flag_keeps_the_note_release_gives_the_item_back(
    store: CollectionStore, queue: ReviewQueue
) -> None:
    import_texts(store, {"1": "Fever , doubt 2 .", "2": "Fever , doubt 1 ."})
    serve_version(store.database, "v1")
    tag_with_doubt(store, "v1", doubt_from_text)
    first = queue.next_item("ada", ReviewFilter("c"))
    assert first is not None
    assert queue.release(first.id, "ada") and not queue.release(first.id, "ada")
    again = queue.next_item("bo", ReviewFilter("c"))
    assert again is not None and again.id == first.id
    flagged = queue.flag(again.id, "bo", "  is this a disease?  ")
    assert (flagged.status, flagged.flag_note) == ("flagged", "is this a disease?")
    assert queue.progress("c") == ReviewProgress(0, 0, 1, 2)
    rest = queue.next_item("bo", ReviewFilter("c"))
    assert rest is not None and rest.external_id == "2"
    assert queue.next_item("bo", ReviewFilter("c", only_unreviewed=False)).id == rest.id  # type: ignore[union-attr]


def test_the_diversity_rule_passes_over_a_near_duplicate_of_a_recent_item(
    store: CollectionStore, queue: ReviewQueue
) -> None:
    abstract = "Lithium induced renal failure in two patients with chronic fever , doubt {} ."
    import_texts(
        store,
        {
            "original": abstract.format(5),
            "duplicate": abstract.format(4),
            "other": "Seizures after cocaine were seen in rats , doubt 3 .",
        },
    )
    serve_version(store.database, "v1")
    tag_with_doubt(store, "v1", doubt_from_text)
    words = abstract.format(5).split()
    assert jaccard(shingles(words), shingles(abstract.format(4).split())) >= DIVERSITY_THRESHOLD
    order = [item.external_id for item in walk(queue, "ada", ReviewFilter("c"))]
    # "duplicate" is more doubtful than "other" but comes after it; then, with only
    # items like the recent ones left, the top one is served anyway.
    assert order == ["original", "other", "duplicate"]


def test_mark_everywhere_is_an_overlay_that_survives_re_tagging(
    store: CollectionStore, queue: ReviewQueue
) -> None:
    import_texts(
        store,
        {
            "here": "Acute liver injury was seen , doubt 5 .",
            "there": "No acute liver injury , doubt 1 .",
            "case": "ACUTE LIVER INJURY , doubt 2 .",
            "absent": "Liver was fine , doubt 3 .",
        },
    )
    serve_version(store.database, "v1")
    tag_with_doubt(store, "v1", doubt_from_text)
    import_texts(store, {"later": "Then liver injury again , doubt 4 ."})  # not tagged yet
    item = queue.next_item("ada", ReviewFilter("c"))
    assert item is not None and item.external_id == "here"
    changed = queue.mark_everywhere("c", ["liver", "injury"], exclude_item=item.id)
    assert changed == 2  # "there" and the untagged "later"; not "ACUTE LIVER INJURY"
    assert queue.mark_everywhere("c", ["liver", "injury"], exclude_item=item.id) == 0
    queue.accept(item.id, "ada")

    serve_version(store.database, "v2")
    tag_with_doubt(store, "v2", doubt_from_text)  # re-tags every unreviewed item
    labels = {}
    while (served := queue.next_item("ada", ReviewFilter("c"))) is not None:
        assert served.model_version == "v2"
        labels[served.external_id] = served.sentences[0].labels
        queue.accept(served.id, "ada")
    assert labels["there"] == ("O", "O", "B-Disease", "I-Disease", "O", "O", "O", "O")
    assert labels["later"] == ("O", "B-Disease", "I-Disease", "O", "O", "O", "O", "O")
    assert "I-Disease" not in labels["case"] and "I-Disease" not in labels["absent"]
    predicted = {c.source: c.predicted for c in queue.corrections.current()}
    assert "I-Disease" not in predicted["collection:c/there"]  # the model's own labels


def test_mark_everywhere_refuses_bad_input(store: CollectionStore, queue: ReviewQueue) -> None:
    import_texts(store, {"1": "Fever , doubt 1 ."})
    with pytest.raises(ReviewError, match="no words to mark"):
        queue.mark_everywhere("c", [])
    with pytest.raises(ReviewError, match="word 1 'a b' contains U\\+0020"):
        queue.mark_everywhere("c", ["a b"])
    with pytest.raises(ReviewError, match=r"'Chemical' is not an entity type.*Disease"):
        queue.mark_everywhere("c", ["fever"], "Chemical")


def test_a_tagged_sentence_scores_its_decoded_labels() -> None:
    sentence = PredictedSentence(("Fever",), ((0, 5),), ("B-Disease",), (0.25,))
    assert sentence.to_json()["scores"] == [0.25]
    assert PredictedSentence.from_json(sentence.to_json()) == sentence
