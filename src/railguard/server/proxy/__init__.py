"""The guarding proxy: the generation routes of any OpenAI-compatible LLM, each with an input and an output rail.

Railed: ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/responses``, streamed or not (their shapes are in
:mod:`railguard.server.proxy.apis`). Other ``/v1/*`` calls pass through only when ``upstream_passthrough`` allows them.

- **Input rail**: the conversation is judged (see :mod:`railguard.server.proxy.conversation`): every user turn, the
  recent turns joined, and the documents the model reads but the user did not write (system and developer
  messages, ``instructions``; and each tool or function result on its own, its verdict named ``name:call_id``)
  as ``GuardInput.context``, where indirect prompt injections hide. Blocked: the upstream is not called.
- **Output rail**: each completion is checked as the response to that prompt. Blocked: it is replaced. Each
  tool call the upstream proposes is judged as an agent action (tool name, arguments, the user's request as its
  task; its verdict named ``name:call_id``), so the policy's action per risk level applies (by default HIGH
  blocks, LOW flags). An output with a blocked tool call loses all of its calls (they are one step of a plan)
  and gets the refusal instead. A call that cannot be read as an action (no function name, arguments over the
  action limit) is blocked. Streamed tool call fragments are assembled and held until the whole call passed.
  Both rails block exactly when the guard's (policy's) verdict is flagged, i.e. its action is ``block``
  (:func:`blocks`); ``flag`` and ``allow`` pass, reported in the verdict. A block answers with a normal answer of
  that API whose text is the operator's refusal (``finish_reason: "content_filter"``, or status ``incomplete``
  for responses) and a ``railguard`` field with the verdicts, so clients written for OpenAI keep working.
- **Streams** (``stream_output``): ``window`` holds every upstream chunk back until a check covering its text, and
  ``stream_holdback_chars`` of text after it, passed (checks run at sentence ends or every N tokens, on the prompt
  with all of the answer so far); part of an answer must stay under the stricter ``stream_partial_threshold`` where
  the policy blocks harmful answers, since the harm of an answer often shows only sentences after its first. Its
  first window (``stream_first_window_chars``) is checked as soon as there is text and, passed under half that
  threshold, released without the hold-back, so the first token waits for one check
  (:class:`railguard.rails.StreamWindow`). ``live`` relays chunks at once and checks behind them; ``buffer`` checks
  the whole answer before releasing any of it. A failed check sends nothing more of the answer, closes the upstream
  stream (so the upstream stops generating) and ends with a ``content_filter`` chunk and ``[DONE]`` (a
  ``response.incomplete`` event for responses). Released chunks are the upstream's bytes, unchanged.
- **Faults** of the upstream (cannot connect, too slow, 5xx, not JSON, a stream that stops mid-way) answer 502
  or 504 with an OpenAI error body, or an error event once a stream has begun; each is audited.

JSON is parsed and written once (:mod:`railguard.server.encoding`): the client's body goes upstream as it came, a
passed answer is the upstream's bytes with the ``railguard`` field spliced in, and stream events are read and
relayed as bytes. Guard calls go through the server's micro-batcher (off the event loop). Every decision is one
audit row with ``direction`` (input/output), ``upstream_called`` and ``stream_output``. All state of a request lives
in that request's own objects: nothing is shared between requests but the HTTP connection pool.
"""

from .service import Proxy, passthrough_allowed, rail_field
from .stream import StreamedAnswer
from .upstream import Upstream, UpstreamError, sse_payloads

__all__ = ["Proxy", "StreamedAnswer", "Upstream", "UpstreamError", "passthrough_allowed", "rail_field",
           "sse_payloads"]
