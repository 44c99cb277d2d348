"""One router per resource: moderations (OpenAI-compatible), guard (native), models, health."""
