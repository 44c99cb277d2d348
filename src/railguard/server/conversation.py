"""Old import path of :mod:`railguard.server.proxy.conversation`."""

from .proxy.conversation import (DOCUMENT_ROLES, IMAGE_PARTS, MODEL_ROLES, TEXT_PARTS, TOOL_ROLES, USER_ROLE,
                                 Conversation, read_chat, read_completion, read_response)

__all__ = ["DOCUMENT_ROLES", "IMAGE_PARTS", "MODEL_ROLES", "TEXT_PARTS", "TOOL_ROLES", "USER_ROLE", "Conversation",
           "read_chat", "read_completion", "read_response"]
