"""``make n8n-e2e``: the example workflow in a real n8n against the real stack, on loopback.

Starts a private Redis, the fake provider and our stack (gunicorn API, Celery worker, beat),
then n8n with a throwaway ``N8N_USER_FOLDER``; imports ``videopoll-wait.json`` (its HTTP node
pointed at this stack), publishes it, triggers it once for a task that succeeds and once for
one that fails, and reads each execution back from n8n's own database: it must have finished
(``success``) in the branch that matches the video's status. Prints one JSON summary line;
exits 0 only when both runs ended where they should.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.e2e.stack import Stack  # noqa: E402
from videopoll.fake_provider import start_in_thread  # noqa: E402
from videopoll.local_redis import free_port, local_redis  # noqa: E402

WORKFLOW = Path(__file__).with_name("videopoll-wait.json")
WORKFLOW_ID = "vpWaitExample001"
CASES = [  # (provider task id, model, the node that must have run last, the job's status)
    ("veo_ok1_n8n", "veo3", "Video ready", "succeeded"),
    ("veo_moderation1_n8n", "veo3", "Video failed", "failed"),
]
STACK_ENV = {
    "POLL_INTERVAL_SECONDS": "0.5", "SWEEP_INTERVAL_SECONDS": "1", "ALLOW_PRIVATE_URLS": "true",
    "KIE_API_KEY": "n8n-e2e-key", "RATE_LIMIT_PER_SECOND": "100", "RATE_LIMIT_BURST": "100",
}


def n8n_env(folder: Path, port: int, node_bin: str | None) -> dict[str, str]:
    """A loopback-only n8n that phones nobody: no telemetry, templates or version checks."""
    path = os.pathsep.join(p for p in (node_bin, os.environ.get("PATH")) if p)
    return {**os.environ, "PATH": path, "N8N_USER_FOLDER": str(folder), "N8N_PORT": str(port),
            "N8N_LISTEN_ADDRESS": "127.0.0.1", "N8N_HOST": "127.0.0.1",
            "WEBHOOK_URL": f"http://127.0.0.1:{port}/", "N8N_ENCRYPTION_KEY": "n8n-e2e-key",
            "DB_TYPE": "sqlite", "N8N_DIAGNOSTICS_ENABLED": "false",
            "N8N_VERSION_NOTIFICATIONS_ENABLED": "false", "N8N_TEMPLATES_ENABLED": "false",
            "N8N_PERSONALIZATION_ENABLED": "false", "N8N_SECURE_COOKIE": "false",
            "N8N_WEBHOOK_URL": f"http://127.0.0.1:{port}/", "N8N_HIRING_BANNER_ENABLED": "false",
            # the MCP server registry refreshes itself from the vendor's API at start
            "N8N_DISABLED_MODULES": "mcp-registry",
            "EXTERNAL_FRONTEND_HOOKS_URLS": "", "N8N_LOG_LEVEL": "info"}


def cli(n8n: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([n8n, *args], env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"n8n {' '.join(args)} failed ({done.returncode}):\n"
                         f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def unflatten(text: str) -> Any:
    """n8n stores execution data with ``flatted``: every object, array and string lives in
    one top-level list, and references are their indices written as strings."""
    table = json.loads(text)
    done: dict[int, Any] = {}

    def resolve(index: int) -> Any:
        if index in done:
            return done[index]
        value = table[index]
        if isinstance(value, str):
            return value
        out: Any = {} if isinstance(value, dict) else []
        done[index] = out
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            item = resolve(int(item)) if isinstance(item, str) else item
            if isinstance(out, dict):
                out[key] = item
            else:
                out.append(item)
        return out

    return resolve(0)


def execution(db: Path, started: int) -> dict[str, Any] | None:
    """The first execution after ``started`` that has ended, with its run data (a resumed
    execution is ``running`` again while it still carries the wait's ``stoppedAt``)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT e.id, e.status, d.data FROM execution_entity e "
            "JOIN execution_data d ON d.executionId = e.id "
            "WHERE e.id > ? AND e.status IN ('success', 'error', 'crashed', 'canceled') "
            "ORDER BY e.id LIMIT 1", (started,)).fetchone()
    if row is None:
        return None
    data = unflatten(row[2])
    return {"id": int(row[0]), "status": row[1],
            "lastNode": data["resultData"].get("lastNodeExecuted"),
            "runData": data["resultData"]["runData"]}


def wait_for(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise SystemExit(f"timed out after {timeout}s waiting for {what}")


def run(n8n: str, workdir: Path, node_bin: str | None) -> dict[str, Any]:
    fake = start_in_thread()
    (workdir / "redis").mkdir()
    with local_redis(workdir / "redis") as redis_url:
        env = {**os.environ, **STACK_ENV, "REDIS_URL": f"{redis_url}/1",
               "KIE_BASE_URL": fake.base_url, "STORAGE_URL": (workdir / "videos").as_uri(),
               "PYTHONPATH": str(REPO)}
        api_port = free_port()
        env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{api_port}"  # links in the callback
        stack = Stack(env, workdir, api_port)
        port = free_port()
        nenv = n8n_env(workdir / "n8n-home", port, node_bin)
        proc: subprocess.Popen[bytes] | None = None
        try:
            stack.start()
            workflow = json.loads(WORKFLOW.read_text())
            workflow["id"] = WORKFLOW_ID
            for node in workflow["nodes"]:
                if node["type"] == "n8n-nodes-base.httpRequest":
                    node["parameters"]["url"] = f"{stack.api}/webhook/poll-video"
            patched = workdir / "workflow.json"
            patched.write_text(json.dumps(workflow))
            version = cli(n8n, nenv, "--version").strip()
            cli(n8n, nenv, "import:workflow", f"--input={patched}")
            cli(n8n, nenv, "publish:workflow", f"--id={WORKFLOW_ID}")
            log = open(workdir / "n8n.log", "wb")  # noqa: SIM115 - lives with the process
            proc = subprocess.Popen([n8n, "start"], env=nenv, stdout=log, stderr=log,
                                    start_new_session=True)
            base = f"http://127.0.0.1:{port}"
            wait_for("n8n to answer /healthz", lambda: _ok(f"{base}/healthz"), 180)
            db = workdir / "n8n-home" / ".n8n" / "database.sqlite"
            results = []
            for task_id, model, node, status in CASES:
                before = _last_execution(db)
                body = {"sessionId": "n8n-e2e", "taskId": task_id, "model": model}
                # n8n answers /healthz before it has registered the published workflow's webhook
                answer = wait_for("n8n to register the Start webhook", lambda b=body: _trigger(
                    f"{base}/webhook/videopoll-start", b), 120)
                got = wait_for(f"the {task_id} execution to finish",
                               lambda b=before: execution(db, b), 120)
                ran = got["runData"].get(node) or [{}]
                out = ran[-1].get("data", {}).get("main", [[{}]])[0][0].get("json", {})
                results.append({"taskId": task_id, "trigger": answer.status_code,
                                "execution": got["id"], "executionStatus": got["status"],
                                "lastNode": got["lastNode"], "output": out,
                                "ok": got["status"] == "success" and got["lastNode"] == node
                                and out.get("status") == status
                                and (status != "succeeded" or _video(out.get("videoUrl")))})
            return {"n8n": version, "date": time.strftime("%Y-%m-%d"), "results": results,
                    "ok": all(r["ok"] for r in results)}
        finally:
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            stack.stop()
            fake.stop()


def _video(url: object) -> bool:
    """The callback's link serves the MP4 (the n8n side would hand it to the user)."""
    if not isinstance(url, str):
        return False
    return requests.get(url, timeout=10).content[4:8] == b"ftyp"


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _trigger(url: str, body: dict[str, str]) -> requests.Response | None:
    answer = requests.post(url, json=body, timeout=30)
    return answer if answer.status_code != 404 else None


def _last_execution(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT MAX(id) FROM execution_entity").fetchone()
    return int(row[0] or 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n8n", required=True, help="the n8n binary")
    parser.add_argument("--node-bin", default=None,
                        help="a folder with the Node.js that n8n needs (first on its PATH)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="videopoll-n8n-"))
    summary = run(args.n8n, workdir, args.node_bin)
    print(json.dumps(summary))
    if args.keep or not summary["ok"]:
        print(f"logs: {workdir}", file=sys.stderr)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
