"""Cross-file checks of the knowledge base, run when it loads."""

from __future__ import annotations

import re
import string

from chat.knowledge_types import (
    PERIODS,
    PLACEHOLDERS,
    PLATFORMS,
    REQUIRED_ANSWERS,
    KnowledgeBase,
    KnowledgeError,
    QuickReplyDef,
)


def check_references(kb: KnowledgeBase) -> None:
    missing = [key for key in REQUIRED_ANSWERS if key not in kb.answers]
    if missing:
        raise KnowledgeError(f"answers.toml: missing answers {missing}")
    for answer in kb.answers.values():
        unknown = [v for v in answer.quick_replies if v not in kb.quick_replies]
        if unknown:
            raise KnowledgeError(
                f"answers.toml: {answer.key}: unknown quick replies {unknown}"
            )
        if answer.steps_from == "brand":
            sizes = {len(g.steps) + len(answer.steps) for g in kb.battery.values()}
            if not sizes <= {2, 3, 4}:
                raise KnowledgeError(
                    f"answers.toml: {answer.key}: brand steps + steps must be 2\u20134"
                )
    for reply in kb.quick_replies.values():
        _check_action(kb, reply)
    if set(kb.lexicon.brands) != set(kb.battery):
        raise KnowledgeError("lexicon.toml: brand names must match battery.toml")
    if not set(kb.lexicon.sources) <= set(kb.sources):
        raise KnowledgeError("lexicon.toml: every source must be in wearables.toml")
    for intent in kb.intents.values():
        for pattern, _ in intent.patterns:
            for name in re.findall(r"@(\w+)", pattern):
                if name != "number" and name not in kb.lexicon.classes:
                    raise KnowledgeError(
                        f"intents.toml: {intent.name}: unknown class @{name}"
                    )


def _check_action(kb: KnowledgeBase, reply: QuickReplyDef) -> None:
    kind, _, arg = reply.action.partition(":")
    slot, _, value = arg.partition("=")
    allowed = {
        "platform": PLATFORMS, "source": tuple(kb.sources), "brand": tuple(kb.battery),
        "period": PERIODS, "android_version": tuple(str(n) for n in range(1, 40)),
    }  # fmt: skip
    bad = (kind == "intent" and arg not in kb.intents) or (
        kind == "set" and value not in allowed.get(slot, ())
    )
    if bad:
        raise KnowledgeError(
            f"quick_replies.toml: reply.{reply.value}: bad action {reply.action!r}"
        )


def all_texts(kb: KnowledgeBase) -> list[tuple[str, str]]:
    texts = [(f"answers.toml: {a.key}", t) for a in kb.answers.values()
             for t in (a.intro, a.next, *a.steps)]  # fmt: skip
    for items in kb.checklists.values():
        texts += [(f"checklists.toml: {i.id}", t)
                  for i in items for t in (i.text, i.question, *i.variants.values())]  # fmt: skip
    texts += [
        (f"battery.toml: {g.brand}", t) for g in kb.battery.values() for t in g.steps
    ]
    texts += [(f"wearables.toml: {s.name}", t) for s in kb.sources.values()
              for t in (*s.connect.values(), *s.labels.values())]  # fmt: skip
    texts += [("wearables.toml: generic", t) for t in kb.generic_connect.values()]
    texts += [("rules.toml: tone", t) for t in kb.tone.values()]
    return texts


def check_texts(kb: KnowledgeBase) -> None:
    for where, text in all_texts(kb):
        lowered = text.lower().replace("\u2019", "'")
        for phrase in kb.forbidden:
            if phrase in lowered:
                raise KnowledgeError(f"{where}: must not say {phrase!r}")
        for _, field, _, _ in string.Formatter().parse(text):
            if field is not None and field not in PLACEHOLDERS:
                raise KnowledgeError(f"{where}: unknown placeholder {{{field}}}")
