"""Build the international name lists in chat/phi_data/ from Faker's locale data.

Needs a throwaway virtualenv (these are NOT project dependencies):
    python3 -m venv /tmp/names && /tmp/names/bin/pip install faker==40.54.0 \
        english-words==2.0.2
    /tmp/names/bin/python bench/build_name_lists.py
Takes the Latin-script first and last names of every Faker person locale. A first
name that is also an English dictionary word (GCIDE) goes to the ambiguous list,
which only counts after a strong cue or before a known surname.
"""

import importlib
import pkgutil
import unicodedata
from pathlib import Path

import faker.providers.person as person  # type: ignore[import-not-found]
from english_words import get_english_words_set  # type: ignore[import-not-found]

DATA = Path(__file__).resolve().parent.parent / "chat" / "phi_data"
HEADER = (
    "# {what}: Latin-script names from every person locale of Faker 40.54.0 (MIT)\n"
    "# not already in the core lists; built by bench/build_name_lists.py.\n"
)


def _latin(word: str) -> bool:
    letters = word.replace("-", "").replace("'", "")
    return letters.isalpha() and all(
        c.isascii() or unicodedata.name(c, "").startswith("LATIN") for c in letters
    )


def _core(name: str) -> set[str]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return {x.strip().lower() for x in lines if x.strip() and not x.startswith("#")}


def _locale_names() -> tuple[set[str], set[str]]:
    first: set[str] = set()
    last: set[str] = set()
    for module in pkgutil.iter_modules(person.__path__):
        provider = importlib.import_module(f"{person.__name__}.{module.name}").Provider
        for attr in dir(provider):
            target = (
                first
                if attr.startswith(("first_name", "first_romanized"))
                else last
                if attr.startswith(("last_name", "last_romanized"))
                else None
            )
            values = getattr(provider, attr)
            if target is None or not isinstance(values, (list, tuple, dict, set)):
                continue
            for value in values:
                if isinstance(value, str):
                    target.update(
                        w for w in value.lower().split() if len(w) >= 3 and _latin(w)
                    )
    return first, last


def main() -> None:
    dictionary = get_english_words_set(["gcide"], lower=True)
    never = _core("not_names.txt")
    first, last = _locale_names()
    core_first = _core("first_names.txt") | _core("ambiguous_names.txt")
    new_first = first - core_first - never
    new_last = last - _core("surnames.txt") - never
    lists = {
        "first_names_intl.txt": ("First names", new_first - dictionary),
        "ambiguous_names_intl.txt": (
            "First names that are English words",
            new_first & dictionary,
        ),
        "surnames_intl.txt": ("Surnames", new_last),
    }
    for filename, (what, words) in lists.items():
        body = "".join(f"{w}\n" for w in sorted(words))
        (DATA / filename).write_text(HEADER.format(what=what) + body, encoding="utf-8")
        print(f"{filename}: {len(words)}")


if __name__ == "__main__":
    main()
