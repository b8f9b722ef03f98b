"""The `pyhello` thub plugin, in Python (componentize-py against thub's WIT, world `plugin`).

Routes under /plugins/pyhello: GET /hello (logged-in callers; counts greetings in kv, greeting
text from config), GET /ping (no host calls), GET /stats (events seen and task runs), GET /fetch?URL (outbound HTTP to
granted hosts), GET /misbehave/<how> (for the containment tests). Events: user.registered and
endpoint.* are counted and answered with `plugin.pyhello.seen`. Task: `tick`.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import config, http, hub, kv, log, types

TEXT = [types.Header("content-type", "text/plain; charset=utf-8")]
JSON = [types.Header("content-type", "application/json")]


def answer(status: int, text: str, headers=TEXT) -> types.Response:
    return types.Response(status, headers, text.encode())


def counter(key: str) -> int:
    raw = kv.get(key)
    return int(raw.decode()) if raw else 0


def bump(key: str) -> int:
    count = counter(key) + 1
    kv.set(key, str(count).encode())
    return count


def misbehave(how: str) -> types.Response:
    if how == "loop":
        while True:
            pass
    if how == "bomb":
        hoard = []
        while True:
            hoard.append(bytearray(1 << 20))
    if how == "raise":
        raise ValueError("this plugin raises on purpose")
    if how == "import":
        import socket  # WASI gives the guest no network: connecting fails

        socket.create_connection(("127.0.0.1", 80), timeout=1)
    if how == "forbidden-call":
        # Outbound HTTP to a host the operator did not grant: the host refuses.
        http.fetch(http.Outgoing("GET", "http://169.254.169.254/", [], b"", 1000))
    return answer(404, "no such misbehaviour")


class Hooks(exports.Hooks):
    def handle_request(self, req: types.Request) -> types.Response:
        if req.method != "GET":
            return answer(405, "GET only")
        if req.path == "/hello":
            count = bump("greetings")
            greeting = config.get("greeting") or "hello"
            who = req.principal.username or "stranger"
            return answer(200, f"{greeting}, {who} (greeting #{count})")
        if req.path == "/ping":
            return answer(200, "pong")
        if req.path == "/stats":
            stats = {
                "user.registered": counter("seen:user.registered"),
                "endpoint.created": counter("seen:endpoint.created"),
                "tick": counter("ticks"),
            }
            return answer(200, json.dumps(stats), JSON)
        if req.path == "/fetch":
            try:
                got = http.fetch(http.Outgoing("GET", req.query, [], b"", 5000))
            except Err as refused:
                return answer(403, f"refused: {refused.value}")
            return answer(got.status, got.body.decode(errors="replace"))
        if req.path.startswith("/misbehave/"):
            return misbehave(req.path.removeprefix("/misbehave/"))
        return answer(404, "no such page")

    def on_request(self, req: types.Request) -> types.Verdict:
        return types.Verdict_Continue()

    def on_event(self, ev: types.Event) -> None:
        bump(f"seen:{ev.kind}")
        hub.emit("seen", json.dumps({"kind": ev.kind, "id": ev.id}))
        log.log(types.Level.INFO, f"saw {ev.kind}")

    def run_task(self, name: str) -> None:
        if name != "tick":
            raise Err(f"no task {name}")
        bump("ticks")
