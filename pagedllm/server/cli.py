"""``pagedllm serve``: its options (beside the engine's, which ``pagedllm.cli`` adds) and start-up."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# NOTE: uvicorn closes an idle connection after 5 s by default, and httpx's pool (the OpenAI client's
# too) keeps one for 5 s: a client could then send a request into a connection the server was closing,
# and lose it (httpx.ReadError, seen in GPU serving benchmarks). Longer than any common client pool keeps
# one (httpx 5 s, aiohttp 15 s), so the client always lets go of an idle connection first.
DEFAULT_KEEP_ALIVE_S = 30


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model_tag",
        nargs="?",
        default=None,
        metavar="MODEL",
        help="model to serve (same as --model; default: the built-in SmolLM2-135M-Instruct)",
    )
    group = parser.add_argument_group("server")
    group.add_argument("--host", default="127.0.0.1")
    group.add_argument("--port", type=int, default=8000)
    group.add_argument(
        "--api-key", default=None, help="require 'Authorization: Bearer KEY' on /v1 routes (default: open)"
    )
    group.add_argument(
        "--max-waiting-requests",
        type=int,
        default=None,
        help="answer 503 when this many requests already wait to be scheduled (default: no limit)",
    )
    group.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30.0,
        help="on SIGTERM, seconds in-flight requests get to finish before they are aborted (default: 30)",
    )
    group.add_argument(
        "--timeout-keep-alive",
        type=int,
        default=DEFAULT_KEEP_ALIVE_S,
        help="seconds an idle keep-alive connection stays open (default: %(default)s; keep it longer than "
        "clients keep theirs, or a request sent as the server closes the connection is lost)",
    )
    limits = parser.add_argument_group("per-request limits (a 400 above them)")
    limits.add_argument("--max-n", type=int, default=16, help="most branches (n) per request")
    limits.add_argument(
        "--max-tokens-limit",
        type=int,
        default=None,
        help="most output tokens a request may ask for; also the cap when it asks for none (default: none)",
    )
    limits.add_argument(
        "--max-prompt-tokens",
        type=int,
        default=None,
        help="longest prompt in tokens (default: max_model_len - 1)",
    )
    limits.add_argument("--max-stop-strings", type=int, default=16)
    limits.add_argument("--max-stop-string-length", type=int, default=256, help="in characters")
    limits.add_argument(
        "--max-prompts-per-request", type=int, default=64, help="prompts in one completions request"
    )
    limits.add_argument(
        "--max-request-body-bytes", type=int, default=8 << 20, help="413 above (default 8 MiB)"
    )
    group.add_argument(
        "--served-model-name", default=None, help="the name clients pass as 'model' (default: from the path)"
    )
    group.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )


def served_model_name(model_name: str) -> str:
    """A path's last part without a weights suffix: ``/models/SmolLM2.gguf`` -> ``SmolLM2``."""
    name = Path(model_name).name
    for suffix in (".gguf", ".json"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name or model_name


def run_server(args: argparse.Namespace, engine_kwargs: dict[str, Any]) -> int:
    # NOTE: imported here so that `pagedllm generate` never needs the server's dependencies.
    import uvicorn

    from pagedllm.config import EngineConfig
    from pagedllm.engine.async_engine import AsyncEngine
    from pagedllm.engine.core_client import EngineCoreStartError
    from pagedllm.server.app import build_app
    from pagedllm.server.limits import RequestLimits
    from pagedllm.server.shutdown import GracefulServer

    if args.model_tag is not None:
        if engine_kwargs.get("model") not in (None, args.model_tag):
            raise ValueError(
                f"two models given: MODEL={args.model_tag!r} and --model={engine_kwargs['model']!r}"
            )
        engine_kwargs = {**engine_kwargs, "model": args.model_tag}
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in [0, 65535], got {args.port}")
    if args.max_waiting_requests is not None and args.max_waiting_requests < 1:
        raise ValueError(f"--max-waiting-requests must be >= 1, got {args.max_waiting_requests}")
    if args.timeout_keep_alive < 1:
        raise ValueError(f"--timeout-keep-alive must be >= 1 second, got {args.timeout_keep_alive}")
    if not args.shutdown_timeout >= 0:
        raise ValueError(f"--shutdown-timeout must be >= 0 seconds, got {args.shutdown_timeout}")
    limits = RequestLimits(
        max_n=args.max_n,
        max_tokens=args.max_tokens_limit,
        max_prompt_tokens=args.max_prompt_tokens,
        max_stop_strings=args.max_stop_strings,
        max_stop_string_chars=args.max_stop_string_length,
        max_prompts=args.max_prompts_per_request,
        max_body_bytes=args.max_request_body_bytes,
    )  # raises ValueError naming a bad limit
    engine_config = EngineConfig(**engine_kwargs)
    try:
        # The engine runs in its own process (the engine core); this one serves HTTP.
        engine = AsyncEngine.launch(engine_config, args.max_waiting_requests, args.log_level)
    except EngineCoreStartError as e:
        raise ValueError(str(e)) from e  # the command's usual "error: ..." and exit code 2
    logger.warning("engine core: pid %d", engine.core.process.pid)
    name = args.served_model_name or served_model_name(engine.model_name)
    app = build_app(engine, name, api_key=args.api_key, limits=limits)
    logger.warning(
        "serving %r on http://%s:%d (max_model_len %d)", name, args.host, args.port, engine.max_model_len
    )
    # NOTE: uvicorn's own graceful timeout is only a backstop after our drain has ended every request.
    server_config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=args.timeout_keep_alive,
    )
    GracefulServer(server_config, app.state.server, args.shutdown_timeout).run()
    return 0
