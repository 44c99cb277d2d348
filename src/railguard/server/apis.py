"""Old import path of :mod:`railguard.server.proxy.apis`."""

from .proxy.apis import (CHAT, COMPLETIONS, RAILED, RESPONSES, Api, BadAnswer, CallPart, ChatApi, CompletionsApi,
                         Piece, ResponsesApi, sse)

__all__ = ["CHAT", "COMPLETIONS", "RAILED", "RESPONSES", "Api", "BadAnswer", "CallPart", "ChatApi", "CompletionsApi",
           "Piece", "ResponsesApi", "sse"]
