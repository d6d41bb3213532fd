"""The items the span editor's browser test edits, shared by its harness and the test.

Each set is a list of ``(item_key, sentences)``; the harness picks one with ``?set=``.
Word indices in the comments are positions in the whole item (what the editor's
cursor counts), which the tests' key sequences rely on.
"""

from __future__ import annotations

from app.span_editor import EditorSentence

Item = tuple[str, list[EditorSentence]]


def sentence(words: str, labels: str, scores: list[float] | None = None) -> EditorSentence:
    """A sentence from space-separated words and labels (``O``, ``B``, ``I`` for Disease)."""
    word_list = words.split(" ")
    tags = [{"O": "O", "B": "B-Disease", "I": "I-Disease"}[tag] for tag in labels.split()]
    return EditorSentence(tuple(word_list), tuple(tags), tuple(scores or [0.95] * len(word_list)))


# 0 Cocaine 1 induced 2 renal 3 failure 4 and 5 acute 6 seizures 7 in 8 two 9 patients 10 .
# 11 No 12 liver 13 hepatitis 14 was 15 seen 16 .
# The model found "renal failure", missed "acute seizures", wrongly marked "patients"
# (low confidence) and put "No" inside "No liver hepatitis".
FIRST = [
    sentence(
        "Cocaine induced renal failure and acute seizures in two patients .",
        "O O B I O O O O O B O",
        [0.97, 0.9, 0.92, 0.88, 0.99, 0.55, 0.7, 0.99, 0.98, 0.41, 0.99],
    ),
    sentence("No liver hepatitis was seen .", "B I I O O O", [0.62, 0.8, 0.85, 0.99, 0.99, 0.99]),
]
SECOND = [
    sentence("Aspirin caused gastric bleeding .", "O O B I O", [0.99, 0.97, 0.51, 0.93, 0.99]),
]
THIRD = [sentence("Heparin was well tolerated .", "O O O O O")]

# 0 Lithium 1 caused 2 renal 3 failure 4 . | 5 Chronic 6 renal 7 failure 8 followed 9 .
REPEATED = [
    sentence("Lithium caused renal failure .", "O O O O O"),
    sentence("Chronic renal failure followed .", "O O O O O"),
]

MARKUP_WORDS = ("<b>", "&amp;", '"quoted"', "<script>alert(1)</script>")
MARKUP_WORDS += ("<img src=x onerror=alert(2)>", "fever")
MARKUP = [EditorSentence(MARKUP_WORDS, ("B-Disease", "O", "O", "O", "O", "B-Disease"), (0.9,) * 6)]


def long_abstract(word_count: int = 300) -> list[EditorSentence]:
    """About ``word_count`` words in 20-word sentences, a few spans in each."""
    vocabulary = ["patients", "with", "chronic", "renal", "failure"]
    vocabulary += ["developed", "acute", "seizures", "after", "treatment"]
    sentences = []
    for start in range(0, word_count, 20):
        words = [vocabulary[(start + i) % len(vocabulary)] for i in range(19)] + ["."]
        labels = ["O"] * 20
        labels[3], labels[4], labels[12] = "B-Disease", "I-Disease", "B-Disease"
        scores = [0.5 if i == 12 else 0.9 for i in range(20)]
        sentences.append(EditorSentence(tuple(words), tuple(labels), tuple(scores)))
    return sentences


ITEM_SETS: dict[str, list[Item]] = {
    "basic": [("doc-1@v1", FIRST), ("doc-2@v1", SECOND), ("doc-3@v1", THIRD)],
    "repeated": [("doc-r@v1", REPEATED)],
    "markup": [("doc-m@v1", MARKUP)],
    "long": [("doc-long@v1", long_abstract())],
    "single": [("sentence-1@v1", SECOND), ("sentence-2@v1", THIRD)],
}
