"""Rules that turn what a user typed into the sentences the encoder reads.

The encoder reads one sentence of at most 64 tokens well; users type emoji,
other languages, padding ("please please please ...") and whole stories.
So, before encoding: symbols and emoji are dropped; a prompt mostly in
another script or language is refused with a message that only English is
understood; a word or phrase said three or more times in a row counts once,
and so does a repeated sentence. What is left is read whole when it is short
(most prompts), else sentence by sentence, and the readings are combined
(`combine`); past MAX_CHARACTERS it is refused with a message. Clauses that
say how the result should look ("so the sky looks crisp", "and keep the skin
smooth") are read only when the rest of the prompt names nothing
(`without_outcomes`).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

from textpromptir.errors import PromptError

# After repeats are collapsed: about 25 sentences, read in well under a second on a CPU.
MAX_CHARACTERS = 2000
WHOLE_WORDS = 40  # a prompt of up to this many words is read whole (it fits the encoder's 64 tokens)
CHUNK_WORDS = 40  # a sentence longer than this is read in clauses, then in windows of this many words
LONGEST_REPEAT = 4  # phrases of up to this many words count once when said three times in a row

EXAMPLES = 'Try "remove the noise", "get rid of the rain and the haze" or "brighten this dark, grainy photo".'
# Words of other languages written in Latin letters that English prompts do not use, by language.
FOREIGN_WORDS = frozenset().union(
    ("le", "les", "des", "une", "est", "avec", "pour", "dans", "sur", "qui", "pas", "cette", "enlever", "supprimer"),
    ("el", "los", "las", "una", "por", "para", "con", "del", "quitar", "eliminar", "quita", "elimina", "esta"),
    ("der", "das", "und", "ist", "nicht", "mit", "bitte", "entferne", "entfernen", "dieses", "bild", "rauschen"),
    ("il", "della", "rimuovi", "rimuovere", "questa", "togli", "immagine"),
    ("uma", "com", "remover", "remova", "essa", "imagem"),
    ("het", "een", "verwijder", "deze", "alsjeblieft"),
    ("och", "bort", "bilden"),
)
ENGLISH_WORDS = frozenset(
    ("the", "a", "an", "and", "it", "this", "that", "is", "are", "was", "please", "of", "to", "in", "on", "my"),
) | frozenset(("me", "remove", "make", "fix", "get", "rid", "can", "could", "you", "with", "from", "for", "too"))
# Letters of scripts that write a word in one or two characters count as several letters.
DENSE_SCRIPTS = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL")


# A clause that says how the result should look rather than what to remove: "..., so the skyline looks
# crisp", "... and keep the skin smooth", "... but don't make it grainy". Its adjectives are other
# degradations' goals (crisp, sharp: blur; smooth: noise; bright: low light), which the encoder would
# read as requests; the clause runs to the next punctuation.
_SUBJECT = r"(?:it|them|they|everything|the\s+[\w'-]+(?:\s+[\w'-]+)?)"
OUTCOME_CLAUSE = re.compile(
    r"(?:,\s*|\s+)(?:(?:and|but|while)\s+)?"
    rf"(?:keep(?:ing)?\s+{_SUBJECT}\s+(?:looking\s+)?"
    rf"|so\s+(?:that\s+)?{_SUBJECT}\s+(?:looks?|is|are|stays?|comes?\s+out)\b"
    rf"|until\s+{_SUBJECT}\s+(?:looks?|is|are)\b"
    rf"|(?:don't|do\s+not|without)\s+mak(?:e|ing)\s+{_SUBJECT}\s)"
    r"[^.;!?,]*",
    re.IGNORECASE,
)


class PromptNotEnglish(PromptError):
    """The prompt is mostly in a language other than English."""


class PromptTooLong(PromptError):
    """The prompt is longer than TextPromptIR reads, even with its repeats collapsed."""


@functools.cache
def is_latin(letter: str) -> bool:
    return letter.isascii() or unicodedata.name(letter, "").startswith("LATIN")


@functools.cache
def letter_weight(letter: str) -> int:
    return 3 if unicodedata.name(letter, "").startswith(DENSE_SCRIPTS) else 1


def drop_symbols(text: str) -> str:
    """Emoji, pictographs, joiners and variation selectors out; words and punctuation stay."""
    if text.isascii():
        return text
    kept = (" " if unicodedata.category(c) in ("So", "Sk", "Cs", "Co", "Cf") else c for c in text)
    return "".join(c for c in kept if c not in "\ufe0e\ufe0f")


def foreign_share(text: str) -> float:
    """How much of the prompt is written in another script, or in another language's function words."""
    if not text.isascii():
        letters = Counter(c for c in text if c.isalpha())
        other_script = sum(letter_weight(c) * n for c, n in letters.items() if not is_latin(c))
        if other_script:
            return other_script / sum(letter_weight(c) * n for c, n in letters.items())
    words = re.findall(r"[^\W\d_]+(?:'[a-z]+)?", text.lower())
    foreign = sum(word in FOREIGN_WORDS for word in words)
    english = sum(word in ENGLISH_WORDS for word in words)
    return foreign / max(foreign + english, 1) if foreign >= 2 else 0.0


def drop_other_scripts(text: str) -> str:
    """A few words in another script beside English are left out: the encoder knows English only."""
    if text.isascii():
        return text
    return re.sub(r"\s+", " ", "".join(c if not c.isalpha() or is_latin(c) else " " for c in text)).strip()


def collapse_repeats(text: str) -> str:
    """A word or phrase said three or more times in a row counts once: "please please please fix it" -> "please
    fix it". Two in a row ("very very dark") stay: that is emphasis."""
    words = text.split()
    keys = [re.sub(r"\W+", "", word.lower()) for word in words]
    kept: list[str] = []
    at = 0
    while at < len(words):
        for size in range(1, LONGEST_REPEAT + 1):
            phrase = keys[at : at + size]
            times = 1
            while keys[at + times * size : at + (times + 1) * size] == phrase and any(phrase):
                times += 1
            if times >= 3:
                at += (times - 1) * size  # keep the last one: punctuation after the run belongs to it
                break
        kept.append(words[at])
        at += 1
    return " ".join(kept)


def sentences(text: str) -> list[str]:
    """The prompt cut after . ! ? ; and line ends, each sentence once."""
    found, seen = [], set()
    for sentence in re.split(r"(?<=[.!?;])\s+|\n+", text):
        key = re.sub(r"\W+", " ", sentence.lower()).strip()
        if key and key not in seen:
            seen.add(key)
            found.append(sentence.strip())
    return found


def chunks(sentence: str) -> list[str]:
    """A sentence short enough to read, or its clauses, or windows of CHUNK_WORDS words."""
    words = sentence.split()
    if len(words) <= CHUNK_WORDS:
        return [sentence]
    clauses = [clause.strip() for clause in re.split(r"(?<=[,:])\s+", sentence) if clause.strip()]
    if len(clauses) > 1:
        return [piece for clause in clauses for piece in chunks(clause)]
    return [" ".join(words[at : at + CHUNK_WORDS]) for at in range(0, len(words), CHUNK_WORDS)]


def clean(prompt: str, capabilities: str) -> str:
    """The prompt as the encoder should read it, or a PromptError that says what to change."""
    text = " ".join(drop_symbols(prompt).split())
    if not text:
        subject = "is empty" if not prompt.strip() else "holds no words"
        raise PromptError(f"The prompt {subject}: describe what to fix. {capabilities}")
    if foreign_share(text) > 0.5:
        raise PromptNotEnglish(
            f'TextPromptIR understands prompts in English only, and "{shorten(text)}" is mostly in another '
            f"language. Describe what to fix in English. {EXAMPLES}"
        )
    text = collapse_repeats(drop_other_scripts(text))
    text = " ".join(sentences(text))
    if len(text) > MAX_CHARACTERS:
        raise PromptTooLong(
            f"The prompt is too long: {len(text):,} characters, and TextPromptIR reads up to {MAX_CHARACTERS:,} "
            f"(about 25 sentences). Say what to fix in a sentence or two. {EXAMPLES}"
        )
    return text


def without_outcomes(text: str) -> str:
    """The prompt without the clauses that say how the result should look (OUTCOME_CLAUSE)."""
    return OUTCOME_CLAUSE.sub("", text).strip()


def pieces(text: str) -> list[str]:
    """What the encoder reads for a cleaned prompt: the whole of it when it is short, else its sentences."""
    if len(text.split()) <= WHOLE_WORDS:
        return [text]
    return [chunk for sentence in sentences(text) for chunk in chunks(sentence)]


def shorten(text: str, length: int = 60) -> str:
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def strongest(probabilities: Sequence[Sequence[float]]) -> int:
    """The piece that names a degradation most clearly."""
    return max(range(len(probabilities)), key=lambda i: max(probabilities[i]))
