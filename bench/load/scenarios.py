"""Load scenarios (issue 8) and the simulated user that drives one of them."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp

from bench.load.client import ChatClient, Recorder

# Answered confidently by the rules (no LLM call).
RULE_TEXTS = (
    "my steps aren't syncing",
    "steps not showing up",
    "battery saver blocks sync",
    "steps counted twice",
    "sync is slow",
    "the count is wrong",
    "hi",
    "thanks",
)
# Open questions the rules are not confident about: these go to the LLM.
LLM_TEXTS = (
    "What do you think about walking in the rain?",
    "How does the accelerometer decide a step was taken?",
    "Tell me a story about pedometers",
    "Could a treadmill confuse the sensor in some odd way?",
    "How do birds find their way home?",
)


@dataclass(frozen=True)
class Scenario:
    """One load shape; ``mix`` weighs rules / quick / llm / stream messages."""

    name: str
    users: int
    messages: int
    think: tuple[float, float]
    mix: dict[str, float]
    llm_latency_ms: float = 500.0
    ttft_ms: float = 300.0
    stream_tokens: int = 20
    ramp_s: float | None = None  # default: the longest think time
    max_seconds: float = 600.0
    targets: dict[str, float] = field(default_factory=dict)
    workers: int = 2
    conversations_per_user: int = 1

    def ramp(self) -> float:
        """Seconds over which the users' first requests are spread."""
        return self.think[1] if self.ramp_s is None else self.ramp_s

    def arrival_window(self) -> float:
        """Seconds from the start in which arrivals add to the running turns: the
        ramp, then the last arrivals' first think time."""
        return self.ramp() + self.think[1]


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "llm-300",
            users=300,
            messages=10,
            think=(3.0, 7.0),
            mix={"llm": 0.6, "rules": 0.25, "quick": 0.15},
            targets={"errors": 0, "p99": 1.5},
        ),
        Scenario(
            "rules-100",
            users=100,
            messages=20,
            think=(1.0, 1.0),
            mix={"rules": 0.6, "quick": 0.4},
            targets={"errors": 0, "p99": 0.25},
        ),
        Scenario(
            "stream-300",
            users=300,
            messages=10,
            think=(3.0, 7.0),
            mix={"stream": 1.0},
            targets={"errors": 0, "ttfe_p99": 1.0},
        ),
        Scenario(
            "overhead-100",
            users=100,
            messages=10,
            think=(3.0, 7.0),
            mix={"llm": 1.0},
            targets={"errors": 0, "overhead": 0.030, "cpu_ms_per_llm_message": 10.0},
        ),
        # 20,000 messages over 2,000 conversations (issue 8 item 2); the server's
        # job runner closes idle sessions meanwhile (bench/load/soak.py).
        Scenario(
            "soak",
            users=100,
            messages=10,
            think=(1.0, 3.0),
            mix={"rules": 0.6, "quick": 0.2, "llm": 0.2},
            llm_latency_ms=50.0,
            conversations_per_user=20,
            max_seconds=1800.0,
            targets={
                "errors": 0,
                "rss_growth_pct": 10.0,
                "active_growth_pct": 10.0,
                "sessions_left_open": 0,
            },
        ),
        Scenario(
            "smoke",
            users=5,
            messages=3,
            think=(0.1, 0.3),
            mix={"rules": 0.4, "quick": 0.2, "llm": 0.2, "stream": 0.2},
            llm_latency_ms=50.0,
            ttft_ms=30.0,
            max_seconds=60.0,
            targets={"errors": 0},
        ),
    )
}


def with_overrides(scenario: Scenario, **changes: Any) -> Scenario:
    """The scenario with command-line overrides (None values are ignored)."""
    return replace(scenario, **{k: v for k, v in changes.items() if v is not None})


@dataclass
class RunState:
    """Shared between users: the stop conditions and what was acknowledged."""

    deadline: float
    max_requests: int
    sent: int = 0
    acknowledged: dict[str, int] = field(default_factory=dict)  # key -> user msg id

    def may_send(self) -> bool:
        return self.sent < self.max_requests and time.monotonic() < self.deadline


def pick_kind(rng: random.Random, mix: dict[str, float], quick: list[str]) -> str:
    kinds = list(mix)
    kind = rng.choices(kinds, weights=[mix[k] for k in kinds])[0]
    if kind == "quick" and not quick:
        return "rules"
    return kind


async def simulate_user(
    session: aiohttp.ClientSession,
    base_urls: list[str],
    token: str,
    scenario: Scenario,
    state: RunState,
    recorder: Recorder,
    rng: random.Random,
) -> None:
    """One user: open conversations, send messages with think time, until done."""
    client = ChatClient(session, base_urls, recorder, token=token)
    client.node = rng.randrange(len(base_urls))
    await asyncio.sleep(rng.uniform(0, scenario.ramp()))
    for _ in range(scenario.conversations_per_user):
        if not state.may_send():
            return
        try:
            conversation = await client.create_conversation()
        except (TimeoutError, aiohttp.ClientError, RuntimeError):
            await asyncio.sleep(rng.uniform(*scenario.think) or 0.1)
            continue
        await _converse(client, conversation, scenario, state, rng)


async def _converse(
    client: ChatClient,
    conversation: int,
    scenario: Scenario,
    state: RunState,
    rng: random.Random,
) -> None:
    quick: list[str] = []
    for _ in range(scenario.messages):
        if not state.may_send():
            return
        state.sent += 1
        kind = pick_kind(rng, scenario.mix, quick)
        key = f"{conversation}-{state.sent}-{rng.getrandbits(48):x}"
        try:
            if kind == "quick":
                reply = await client.send(
                    conversation, kind=kind, quick_reply=rng.choice(quick), key=key
                )
            else:
                pool = RULE_TEXTS if kind == "rules" else LLM_TEXTS
                reply = await client.send(
                    conversation,
                    kind=kind,
                    text=rng.choice(pool),
                    stream=kind == "stream",
                    key=key,
                )
        except (TimeoutError, aiohttp.ClientError):
            quick = []
        else:
            quick = reply.quick_replies
            if reply.status in (200, 201) and reply.user_message_id is not None:
                state.acknowledged[key] = int(reply.user_message_id)
        await asyncio.sleep(rng.uniform(*scenario.think))


async def run_users(
    base_urls: list[str],
    tokens: list[str],
    scenario: Scenario,
    *,
    max_requests: int,
    seed: int = 8,
) -> tuple[Recorder, RunState, float]:
    """Run every user of the scenario concurrently; return samples and duration."""
    recorder = Recorder()
    state = RunState(
        deadline=time.monotonic() + scenario.max_seconds, max_requests=max_requests
    )
    rng = random.Random(seed)
    from bench.load.client import new_session

    started = time.monotonic()
    async with new_session(total_timeout=120.0) as session:
        users = [
            simulate_user(
                session,
                base_urls,
                token,
                scenario,
                state,
                recorder,
                random.Random(rng.getrandbits(32)),
            )
            for token in tokens
        ]
        await asyncio.gather(*users)
    return recorder, state, time.monotonic() - started
