"""Prompts the model cannot read: words its tokenizer maps to the unknown token.

A word-level tokenizer (the organism's) turns every word outside its vocabulary into ``[UNK]``, so "a
giraffe" and "a zebra" become the same prompt and give identical activations at one seed. A capture
therefore refuses such prompts, naming the words, unless explicitly allowed (then it warns).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any


class UnknownTokensWarning(UserWarning):
    """Prompts with words the tokenizer does not know are captured anyway (``allow_unknown_tokens``)."""


def unknown_words(tokenizer: Any, prompts: Iterable[str]) -> dict[str, list[str]]:
    """For every prompt holding a whitespace-separated word that tokenises to (or with) the unknown token,
    that prompt's unknown words, in order. Empty for a tokenizer without an unknown token (byte-level BPE)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None:
        return {}
    verdict: dict[str, bool] = {}
    found = {}
    for prompt in dict.fromkeys(prompts):
        words = prompt.split()
        for word in words:
            if word not in verdict:
                verdict[word] = unk in tokenizer(word, add_special_tokens=False)["input_ids"]
        unknown = [word for word in words if verdict[word]]
        if unknown:
            found[prompt] = unknown
    return found


def check_vocabulary(tokenizer: Any, prompts: Iterable[str], *, allow_unknown_tokens: bool = False) -> None:
    """``ValueError`` naming the unknown words of ``prompts`` (a warning with ``allow_unknown_tokens``)."""
    found = unknown_words(tokenizer, prompts)
    if not found:
        return
    words = sorted({word for unknown in found.values() for word in unknown})
    examples = "; ".join(f"{prompt!r}: {unknown}" for prompt, unknown in list(found.items())[:5])
    message = (
        f"prompts: {len(found)} prompt(s) contain words the model's tokenizer does not know, {words} "
        f"(e.g. {examples}); they all read as {getattr(tokenizer, 'unk_token', 'the unknown token')!r}, so such "
        "prompts are indistinguishable to the model"
    )
    if not allow_unknown_tokens:
        raise ValueError(f"{message}. Use words of its vocabulary, or pass allow_unknown_tokens=True to capture anyway")
    warnings.warn(message, UnknownTokensWarning, stacklevel=3)
