"""A local stand-in for the Telegram Bot API, the one edge of the world tests cannot
reach. An aiohttp server on 127.0.0.1 answering ``POST /bot<token>/<method>`` with
``{"ok": true, "result": ...}`` and serving files under ``/file/bot<token>/<path>``.

It records every call (method and form fields, decoded), and it fails loudly: a
method it does not know, or a wrong token, is recorded in ``unexpected`` and answered
with an error; ``assert_clean()`` (called by the fixture at teardown) fails the test.
It can be told to answer 429 with ``retry_after`` (``flood``) or 403 for a chat
(``block``), to answer a chat's messages late (``slow``), and to be unreachable
(``down``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from awasi.settings import Settings
from awasi.web import keys
from services.intake.telegram.bot import APPLICATION, SECRET_HEADER
from tests.support import images
from tests.support.services import running_service
from tests.support.wait import eventually

BOT_USER = {"id": 999000, "is_bot": True, "first_name": "Awasi", "username": "awasi_bot"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    @property
    def text(self) -> str:
        return str(self.params.get("text", ""))

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of an inline keyboard, row by row."""
        markup = self.params.get("reply_markup")
        if not markup:
            return []
        rows = markup.get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]


@dataclass
class BotApi:
    token: str
    files: dict[str, bytes] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    blocked: set[int] = field(default_factory=set)
    flood: list[int] = field(default_factory=list)  # retry_after of the next 429 answers
    down: bool = False
    slow: dict[int, float] = field(default_factory=dict)  # chat id -> seconds per answer
    updates: list[dict[str, Any]] = field(default_factory=list)  # for getUpdates
    url: str = ""
    _ids: Any = field(default_factory=lambda: itertools.count(1000))

    METHODS = ("getMe", "sendMessage", "answerCallbackQuery", "getFile", "deleteWebhook",
               "getUpdates", "setWebhook", "editMessageReplyMarkup", "close", "logOut")

    # --- what tests use -------------------------------------------------------------

    def sent(self, chat_id: int | None = None) -> list[Call]:
        """sendMessage calls (to ``chat_id``), in order."""
        return [c for c in self.calls if c.method == "sendMessage"
                and (chat_id is None or c.chat_id == chat_id)]

    async def wait_for(self, predicate: Callable[[list[Call]], bool], within: float = 10.0,
                       what: str = "condition") -> list[Call]:
        """Poll the recorded calls until ``predicate(calls)`` holds; AssertionError
        with the calls so far after ``within`` seconds."""
        async def check() -> bool:
            return predicate(self.calls)

        try:
            await eventually(check, within, what, interval=0.02)
        except AssertionError as e:
            raise AssertionError(f"{e}; calls: "
                                 f"{[(c.method, c.params) for c in self.calls][-10:]}") from None
        return self.calls

    async def wait_sent(self, chat_id: int, n: int, within: float = 10.0) -> list[Call]:
        """Wait until at least ``n`` messages were sent to ``chat_id``; return them."""
        await self.wait_for(lambda _: len(self.sent(chat_id)) >= n, within,
                            f"{n} messages to chat {chat_id}")
        return self.sent(chat_id)

    def assert_clean(self) -> None:
        assert not self.unexpected, f"unexpected Bot API calls: {self.unexpected}"

    # --- the server -----------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.*}", self._file)
        return app

    async def _method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            self.unexpected.append(f"wrong token for {method}")
            return _error(401, "Unauthorized")
        params = await _params(request)
        if self.down:
            # Like a gateway in front of an unreachable API: PTB raises NetworkError.
            return web.Response(status=502, text="bad gateway")
        self.calls.append(Call(method, params))
        if method not in self.METHODS:
            self.unexpected.append(method)
            return _error(404, f"Not Found: method {method} not expected by the test")
        chat_id = params.get("chat_id")
        if method == "sendMessage":
            if chat_id is not None and int(chat_id) in self.slow:
                await asyncio.sleep(self.slow[int(chat_id)])  # recorded above, answered late
            if chat_id is not None and int(chat_id) in self.blocked:
                return _error(403, "Forbidden: bot was blocked by the user")
            if self.flood:
                retry = self.flood.pop(0)
                return web.json_response({
                    "ok": False, "error_code": 429,
                    "description": f"Too Many Requests: retry after {retry}",
                    "parameters": {"retry_after": retry}}, status=429)
        if method == "getUpdates" and not self.updates:
            # Long polling: hold the request a little rather than spin.
            await asyncio.sleep(0.2)
        return web.json_response({"ok": True, "result": self._result(method, params)})

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return BOT_USER
        if method == "sendMessage":
            chat_id = int(params["chat_id"])
            return {"message_id": next(self._ids), "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private"}, "from": BOT_USER,
                    "text": params.get("text", "")}
        if method == "getFile":
            file_id = params["file_id"]
            if file_id not in self.files:
                self.unexpected.append(f"getFile for unknown {file_id}")
            return {"file_id": file_id, "file_unique_id": f"u{file_id}",
                    "file_size": len(self.files.get(file_id, b"")),
                    "file_path": f"photos/{file_id}.jpg"}
        if method == "getUpdates":
            batch, self.updates = self.updates, []
            return batch
        return True

    async def _file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            self.unexpected.append("file download with a wrong token")
            return web.Response(status=401)
        path = request.match_info["path"]
        file_id = path.removeprefix("photos/").removesuffix(".jpg")
        self.calls.append(Call("download", {"path": path}))
        if file_id not in self.files:
            self.unexpected.append(f"download of unknown file {path}")
            return web.Response(status=404)
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")


async def _params(request: web.Request) -> dict[str, Any]:
    """The call's fields: PTB sends form-encoded strings (JSON for nested values)."""
    if request.content_type == "application/json":
        data = await request.json()
        return dict(data) if isinstance(data, dict) else {}
    form = await request.post()
    params: dict[str, Any] = {}
    for key, value in form.items():
        text = value if isinstance(value, str) else str(value)
        if key in ("reply_markup", "allowed_updates", "entities"):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(text)
                continue
        params[key] = text
    return params


def _error(status: int, description: str) -> web.Response:
    return web.json_response({"ok": False, "error_code": status, "description": description},
                             status=status)


@contextlib.asynccontextmanager
async def running_botapi(token: str) -> AsyncIterator[BotApi]:
    """Serve a ``BotApi`` on 127.0.0.1 (random port); ``.url`` is its base address."""
    from aiohttp.test_utils import TestServer

    api = BotApi(token=token)
    server = TestServer(api.app(), host="127.0.0.1")
    # No access log: it is Telegram's side (its request lines carry the token), and
    # tests/test_security_telegram.py checks that none of *our* logs do.
    await server.start_server(access_log=None)
    api.url = str(server.make_url("")).rstrip("/")
    try:
        yield api
    finally:
        await server.close()


# --- building updates as Telegram sends them ------------------------------------------

class Updates:
    """Makes update JSON for one user/chat (``update_id`` counts up)."""

    _next_id = itertools.count(1)

    def __init__(self, chat_id: int, language_code: str = "id", first_name: str = "Siti") -> None:
        self.chat_id = chat_id
        self.user = {"id": chat_id, "is_bot": False, "first_name": first_name,
                     "language_code": language_code}
        self.chat = {"id": chat_id, "type": "private", "first_name": first_name}
        self._message_ids = itertools.count(1)

    def _message(self, **fields: Any) -> dict[str, Any]:
        return {"message_id": next(self._message_ids), "date": int(time.time()),
                "chat": self.chat, "from": self.user, **fields}

    def _update(self, **fields: Any) -> dict[str, Any]:
        return {"update_id": next(self._next_id), **fields}

    def text(self, text: str) -> dict[str, Any]:
        fields: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split()[0]
            fields["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self._update(message=self._message(**fields))

    def location(self, lat: float, lon: float) -> dict[str, Any]:
        return self._update(message=self._message(location={"latitude": lat, "longitude": lon}))

    def photo(self, file_id: str, size: int) -> dict[str, Any]:
        sizes = [{"file_id": f"{file_id}-thumb", "file_unique_id": f"t{file_id}", "width": 90,
                  "height": 90, "file_size": 1000},
                 {"file_id": file_id, "file_unique_id": f"u{file_id}", "width": 1280,
                  "height": 960, "file_size": size}]
        return self._update(message=self._message(photo=sizes))

    def sticker(self) -> dict[str, Any]:
        return self._update(message=self._message(sticker={
            "file_id": "stk", "file_unique_id": "ustk", "type": "regular", "width": 512,
            "height": 512, "is_animated": False, "is_video": False}))

    def edited(self, text: str) -> dict[str, Any]:
        msg = self._message(text=text)
        msg["edit_date"] = int(time.time())
        return self._update(edited_message=msg)

    def button(self, data: str) -> dict[str, Any]:
        return self._update(callback_query={
            "id": f"cq{next(self._message_ids)}", "from": self.user, "chat_instance": "ci",
            "data": data,
            "message": {"message_id": 1, "date": int(time.time()), "chat": self.chat,
                        "from": BOT_USER, "text": "..."}})

    def blocked_bot(self) -> dict[str, Any]:
        return self._update(my_chat_member={
            "chat": self.chat, "from": self.user, "date": int(time.time()),
            "old_chat_member": {"status": "member", "user": BOT_USER},
            "new_chat_member": {"status": "kicked", "user": BOT_USER, "until_date": 0}})



# --- the intake app with the bot, driven through its webhook -----------------------------

TOKEN = "123456:TEST-token-for-the-stand-in"
SECRET = "webhook-secret-0123456789"
JPEG = images.JPEG


def bot_settings(settings: Settings, api: BotApi, **over: Any) -> Settings:
    values: dict[str, Any] = {"telegram_token": TOKEN, "telegram_webhook_secret": SECRET,
                              "telegram_api_url": api.url, "rate_limit_per_minute": 10_000}
    return settings.with_(**{**values, **over})


@dataclass
class BotClient:
    """The intake app with the bot, and what the tests do to it."""

    client: TestClient
    api: BotApi

    @property
    def pool(self) -> asyncpg.Pool:
        return self.client.server.app[keys.POOL]

    async def wait_ready(self, within: float = 15.0) -> None:
        application = self.client.server.app[APPLICATION]
        async def running() -> bool:
            return bool(application.running)

        await eventually(running, within, "the bot to start", interval=0.02)

    async def post(self, update: dict[str, Any], *, wait: bool = True,
                   secret: str | None = SECRET) -> int:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        r = await self.client.post("/telegram/webhook", json=update, headers=headers)
        if wait and r.status == 200 and not (await r.json()).get("ignored"):
            # The update was stored: wait until the inbox worker has processed it.
            await self.processed(update["update_id"])
        return r.status

    async def processed(self, update_id: int, within: float = 15.0) -> None:
        """Wait until the inbox marked ``update_id`` processed (the whole handler ran)."""
        deadline = time.monotonic() + within
        while not await self.pool.fetchval(
                "SELECT processed_at IS NOT NULL FROM intake.telegram_inbox"
                " WHERE update_id = $1", update_id):
            assert time.monotonic() < deadline, f"update {update_id} was not processed"
            await asyncio.sleep(0.02)

    async def say(self, user: Updates, update: dict[str, Any]) -> Call:
        """Post ``update`` and return the last message the bot sent to the chat."""
        before = len(self.api.sent(user.chat_id))
        assert await self.post(update) == 200
        sent = await self.api.wait_sent(user.chat_id, before + 1)
        return sent[-1]

    async def chat_state(self, chat_id: int) -> str:
        return await self.pool.fetchval(  # type: ignore[no-any-return]
            "SELECT state FROM intake.telegram_chats WHERE chat_id = $1", chat_id)

    async def report(self, user: Updates, *, privacy: str = "anonymous",
                     region: str = "MDN", category: str = "sampah",
                     description: str = "Sampah di Jalan Sei Batang Hari tidak diangkut "
                                        "sejak dua minggu.",
                     name: str = "Siti Rahmawati", phone: str | None = "+62 812 5550 1234",
                     ) -> tuple[str, str, Call]:
        """Walk the whole /lapor conversation with buttons; return (complaint id,
        tracking code, the receipt message)."""
        await self.say(user, user.text("/lapor"))
        await self.say(user, user.button(f"r:{region}"))
        await self.say(user, user.button(f"c:{category}"))
        await self.say(user, user.text(description))
        await self.say(user, user.button("skip"))
        await self.say(user, user.button("done"))
        last = await self.say(user, user.button(f"pv:{privacy}"))
        if privacy != "anonymous":
            await self.say(user, user.text(name))
            last = await self.say(user, user.text(phone) if phone else user.button("skip"))
        assert ("ok" in [d for _, d in last.buttons]), last
        receipt = await self.say(user, user.button("ok"))
        row = await self.pool.fetchrow(
            "SELECT c.id, c.tracking_code FROM intake.telegram_reports r"
            " JOIN intake.complaints c ON c.id = r.complaint_id WHERE r.chat_id = $1"
            " ORDER BY c.submitted_at DESC LIMIT 1", user.chat_id)
        assert row is not None
        return str(row["id"]), row["tracking_code"], receipt


@contextlib.asynccontextmanager
async def running_bot(settings: Settings, api: BotApi, *,
                      wait_ready: bool = True) -> AsyncIterator[BotClient]:
    """The intake app with its bot; by default only once the bot has reached the
    stand-in (it starts in the background)."""
    async with running_service("intake", settings) as client:
        bot = BotClient(client, api)
        if wait_ready:
            await bot.wait_ready()
        yield bot
