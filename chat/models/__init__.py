"""Chat models: conversations and their messages (LLM call records live in llm.py)."""

from chat.models.conversation import Conversation, Message
from chat.models.llm import BreakerTransition, LLMCall

__all__ = ["BreakerTransition", "Conversation", "LLMCall", "Message"]
