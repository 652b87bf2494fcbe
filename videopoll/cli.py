"""The ``videopoll`` command: run the demo, the fake provider, submit jobs, read status."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import requests

DEFAULT_API = "http://127.0.0.1:8000"


def _call(method: str, url: str, token: str | None, body: dict[str, Any] | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = requests.request(method, url, json=body, headers=headers, timeout=10)
    except requests.RequestException as exc:
        print(f"error: cannot reach {url}: {type(exc).__name__}", file=sys.stderr)
        return 2
    try:
        print(json.dumps(resp.json(), indent=2))
    except ValueError:
        print(resp.text)
    return 0 if resp.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="videopoll", description=__doc__)
    parser.add_argument("--api", default=DEFAULT_API, help="API base URL (default %(default)s)")
    parser.add_argument("--token", default=None, help="bearer token when API_TOKEN is set")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("run-demo", help="start the stack offline and run one job end to end")
    demo.add_argument("--procfile", default="Procfile")
    demo.add_argument("--exit", action="store_true", help="stop the stack after the demo job")

    fake = sub.add_parser("fake-provider", help="run the bundled fake providers (every family)")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8099)

    submit = sub.add_parser("submit", help="submit a poll (--task-id) or generate (--prompt) job")
    submit.add_argument("--model", required=True)
    submit.add_argument("--session", default="cli")
    group = submit.add_mutually_exclusive_group(required=True)
    group.add_argument("--task-id", help="poll an existing provider task (the n8n path)")
    group.add_argument("--prompt", help="generate a new video")
    submit.add_argument("--aspect-ratio", default="16:9")
    submit.add_argument("--duration", type=int, default=None)

    status = sub.add_parser("status", help="show a job")
    status.add_argument("job_id")
    cancel = sub.add_parser("cancel", help="cancel a job")
    cancel.add_argument("job_id")

    stats = sub.add_parser("stats", help="generation time, failures, cost and capacity")
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    stats.add_argument("--since", type=float, default=None, metavar="HOURS",
                       help="only jobs finished in the last HOURS")
    stats.add_argument("--plot", default=None, metavar="PNG",
                       help="also draw time per model and failures by code (needs matplotlib)")

    args = parser.parse_args(argv)
    api = args.api.rstrip("/")
    if args.command == "run-demo":
        from videopoll.demo import run_demo

        return run_demo(args.procfile, args.exit)
    if args.command == "fake-provider":
        from videopoll.fake_provider.server import main as fake_main

        return int(fake_main(["--host", args.host, "--port", str(args.port)]))
    if args.command == "stats":
        from videopoll.settings import load_settings
        from videopoll.stats import main as stats_main

        return stats_main(load_settings(), args.json, args.since, args.plot)
    if args.command == "submit":
        if args.task_id:
            body: dict[str, Any] = {"sessionId": args.session, "taskId": args.task_id,
                                    "model": args.model, "attempt": 1}
            return _call("POST", f"{api}/webhook/poll-video", args.token, body)
        body = {"sessionId": args.session, "model": args.model, "prompt": args.prompt,
                "aspectRatio": args.aspect_ratio}
        if args.duration is not None:
            body["durationSeconds"] = args.duration
        return _call("POST", f"{api}/jobs", args.token, body)
    if args.command == "status":
        return _call("GET", f"{api}/jobs/{args.job_id}", args.token)
    return _call("POST", f"{api}/jobs/{args.job_id}/cancel", args.token)


if __name__ == "__main__":
    sys.exit(main())
