"""WordPiece for pre-split words, keeping which pieces belong to which word.

The model labels words, but BERT reads sub-word pieces. Only the first piece of a word
carries the word's label; later pieces are masked out of the loss and ignored at
prediction (the original project's `X` label).

Example:
    >>> vocab = f"{tiny_model_dir}/vocab.txt"
    >>> encoder = WordPieceEncoder.from_vocab_file(vocab, lowercase=True)
    >>> pieces = encoder.encode_words(["Seizures", "unheard-of"])
    >>> [len(word) for word in pieces]  # "unheard", "-", "of": three pieces, one word
    [1, 3]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from tagger.errors import TaggerError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")


class VocabularyError(TaggerError, ValueError):
    """A vocab.txt that lacks what BERT needs."""


class WordPieceEncoder:
    """BERT WordPiece through Hugging Face `tokenizers`, one piece list per input word.

    A word that normalises to nothing (a lone control character, say) still gets one
    `[UNK]` piece, so that every input word has a first piece and therefore a label.
    """

    def __init__(self, vocab: dict[str, int], *, lowercase: bool) -> None:
        missing = [token for token in SPECIAL_TOKENS if token not in vocab]
        if missing:
            raise VocabularyError(
                f"the vocabulary lacks {', '.join(missing)}: use the vocab.txt of a BERT encoder"
            )
        self.vocab = vocab
        self.lowercase = lowercase
        self.pad_id = vocab["[PAD]"]
        self.unk_id = vocab["[UNK]"]
        self.cls_id = vocab["[CLS]"]
        self.sep_id = vocab["[SEP]"]
        tokenizer = Tokenizer(
            models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100)
        )
        tokenizer.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=lowercase, lowercase=lowercase
        )
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        self._tokenizer = tokenizer

    @classmethod
    def from_vocab_file(cls, path: str | Path, *, lowercase: bool) -> WordPieceEncoder:
        return cls(read_vocab(path), lowercase=lowercase)

    def encode_words(self, words: Sequence[str]) -> list[list[int]]:
        """The WordPiece ids of each word, in order; never an empty list for a word."""
        return self.encode_sentences([words])[0]

    def encode_sentences(self, sentences: Sequence[Sequence[str]]) -> list[list[list[int]]]:
        """Batch version of `encode_words`: the tokenizer runs in Rust over all sentences."""
        encodings = self._tokenizer.encode_batch(
            [list(words) for words in sentences], is_pretokenized=True, add_special_tokens=False
        )
        result: list[list[list[int]]] = []
        for words, encoding in zip(sentences, encodings, strict=True):
            pieces: list[list[int]] = [[] for _ in words]
            for token_id, word_index in zip(encoding.ids, encoding.word_ids, strict=True):
                if word_index is not None:
                    pieces[word_index].append(token_id)
            result.append([word_pieces or [self.unk_id] for word_pieces in pieces])
        return result

    def pieces_as_text(self, ids: Sequence[int]) -> list[str]:
        """The vocabulary strings of some ids, for debugging and tests."""
        return [self._tokenizer.id_to_token(token_id) or "[UNK]" for token_id in ids]


def read_vocab(path: str | Path) -> dict[str, int]:
    """`vocab.txt`: one token per line, its id is its line number (from 0)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise VocabularyError(f"{path}: no such vocabulary file") from None
    except UnicodeDecodeError as error:
        raise VocabularyError(f"{path}: not UTF-8 ({error.reason})") from None
    vocab: dict[str, int] = {}
    for index, token in enumerate(lines):
        vocab.setdefault(token.rstrip("\r"), index)
    return vocab
