"""Six months of believable history for the demo: a few hundred complaints in the five
cities, across channels and categories, worked by the agencies (acknowledged,
answered, resolved; some late, some disputed and reopened; ratings), breaches that
fill the panel's queue, and findings, so every screen has something in it.

How: a simulation through the services' own code, never hand-written rows. Each
complaint gets a script of steps (submit, acknowledge, ask, answer, resolve, rate,
dispute, the panel's reopening or finding) at times drawn from a seeded RNG; all
steps of all complaints run in time order. A step calls the service's own domain
function (``services.intake.domain``, ``services.router.domain``,
``services.oversight.panel``) at the step's time; the events it writes to its
outbox are then delivered, in outbox order, to the other services' consumer
handlers (the same handlers the Kafka consumers call, each with its
``processed_events`` record), and oversight's deadline scheduler sweeps on a manual
clock set to the step's time, so breaches and escalations fire when they would
have. The three services' data therefore agree as if it had all happened live.

The outbox rows stay unsent: when the services start, the relays publish them and
the consumers, finding each event in ``processed_events``, change nothing.

Deterministic and idempotent: one seeded RNG, times relative to the day the demo is
loaded (its last day is yesterday, in WIB), ids derived from the RNG; the whole
history is one transaction under an advisory lock, and a database that has it
already is left alone.
"""

from __future__ import annotations

import heapq
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from awasi import jsoncodec
from awasi.catalog import Catalog
from awasi.events.envelope import Envelope
from awasi.settings import Settings
from awasi.web.errors import ApiError

log = logging.getLogger(__name__)

SEED = 20260601
COMPLAINTS = 360
DAYS = 182
LOCK_KEY = 0x4157_4153_4944_454D  # "AWASIDEM"
# The first complaint's id marks a database that has the history already.
NAMESPACE = uuid.UUID("5b1f0a3e-6d2c-4a7e-9b8f-0d3c2a1e4f50")
JAKARTA = ZoneInfo("Asia/Jakarta")
SWEEP_EVERY = timedelta(hours=2)

# How often each city and category comes up (Medan is the largest city).
REGION_WEIGHTS = {"MDN": 34, "PLJ": 16, "SWL": 12, "PKY": 20, "SRG": 18}
CATEGORY_WEIGHTS = {
    "jalan-rusak": 14, "sampah": 12, "adminduk-ktp": 11, "puskesmas": 9, "asn-pungli": 8,
    "drainase": 7, "sekolah": 7, "asn-absen": 7, "lampu-jalan": 6, "adminduk-kk": 5,
    "asn-kasar": 5, "adminduk-akta": 4, "asn-lambat": 4, "ketertiban": 3, "parkir-liar": 3,
    "asn-netralitas": 2, "lainnya": 4,
}
CHANNELS = (("web", 45), ("telegram", 30), ("api", 15), ("open311", 10))
PRIVACY = (("confidential", 50), ("named", 30), ("anonymous", 20))

PLACES = {
    "MDN": ["Jl. Gatot Subroto", "Jl. Brigjend Katamso", "Kel. Sei Sikambing", "Jl. Setia Budi",
            "Kec. Medan Johor", "Jl. Sisingamangaraja", "Pasar Petisah"],
    "PLJ": ["Kel. Plaju Ulu", "Jl. DI Panjaitan", "Kel. Bagus Kuning", "Jl. Kapten Robani Kadir",
            "Kel. Talang Putri"],
    "SWL": ["Kel. Kubang Sirakuk", "Jl. Khatib Sulaiman", "Desa Muaro Kalaban", "Pasar Remaja",
            "Kel. Saringan"],
    "PKY": ["Jl. Tjilik Riwut km 2", "Jl. G. Obos", "Kel. Palangka", "Jl. RTA Milono",
            "Kel. Menteng", "Jl. Yos Sudarso"],
    "SRG": ["Jl. Basuki Rahmat", "Kel. Klademak", "Jl. Sam Ratulangi", "Kel. Remu Utara",
            "Kampung Baru", "Jl. Jend. Sudirman"],
}
TEXTS = {
    "jalan-rusak": ["Jalan berlubang besar di {p}, sudah berminggu-minggu dan membahayakan "
                    "pengendara motor, apalagi saat hujan.",
                    "Aspal di {p} mengelupas sepanjang kira-kira 50 meter; beberapa pengendara "
                    "sudah jatuh."],
    "sampah": ["Sampah tidak diangkut selama seminggu di TPS {p}, bau menyengat dan banyak "
               "lalat.", "Tumpukan sampah liar di pinggir jalan {p} makin tinggi, mohon "
               "diangkut dan dipasang larangan membuang sampah."],
    "adminduk-ktp": ["Sudah tiga minggu KTP-el saya belum jadi, di Disdukcapil dibilang "
                     "blangko habis tanpa kepastian.", "Perekaman KTP-el di kecamatan dekat "
                     "{p} ditutup terus dengan alasan jaringan gangguan."],
    "adminduk-kk": ["Perubahan Kartu Keluarga setelah kelahiran anak tidak selesai-selesai, "
                    "sudah bolak-balik empat kali."],
    "adminduk-akta": ["Akta kelahiran anak kami salah tulis nama ibu, permohonan perbaikan "
                      "belum diproses sejak bulan lalu."],
    "puskesmas": ["Antrean di puskesmas dekat {p} sangat panjang, dokter baru datang jam "
                  "sepuluh.", "Obat di puskesmas sering kosong, pasien disuruh membeli di "
                  "apotek luar."],
    "asn-pungli": ["Petugas kelurahan di {p} meminta uang Rp 150.000 untuk mempercepat surat "
                   "keterangan, tanpa kuitansi.", "Ada pungutan Rp 50.000 untuk legalisir "
                   "dokumen yang seharusnya gratis."],
    "drainase": ["Saluran air di {p} tersumbat, setiap hujan deras air masuk ke rumah warga.",
                 "Gorong-gorong di {p} ambruk dan airnya meluap ke jalan."],
    "sekolah": ["Atap ruang kelas di sekolah dasar dekat {p} bocor dan plafonnya hampir "
                "runtuh.", "Sekolah meminta sumbangan wajib untuk seragam dan buku yang "
                "seharusnya tidak dipungut."],
    "asn-absen": ["Pegawai di kantor pelayanan {p} sering tidak ada di tempat pada jam kerja, "
                  "loket tutup sebelum jam dua belas."],
    "lampu-jalan": ["Lampu penerangan jalan di {p} mati sejak dua minggu, jalan gelap dan "
                    "rawan kejahatan.", "Tiga tiang lampu jalan di {p} tidak menyala."],
    "asn-kasar": ["Petugas loket di kantor dekat {p} membentak warga lansia yang bertanya."],
    "asn-lambat": ["Izin usaha kecil saya tertahan dua bulan tanpa penjelasan, petugas hanya "
                   "bilang masih diproses."],
    "ketertiban": ["Pedagang menutup trotoar di {p} sehingga pejalan kaki harus turun ke "
                   "jalan."],
    "parkir-liar": ["Parkir liar di depan {p} memakan separuh jalan dan juru parkir memungut "
                    "tarif di atas ketentuan."],
    "asn-netralitas": ["Seorang ASN kelurahan mengajak warga memilih calon tertentu dalam "
                       "pertemuan RT di {p}."],
    "lainnya": ["Lampu lalu lintas di persimpangan dekat {p} mati sejak tiga hari.",
                "Pohon tumbang di {p} belum disingkirkan dan menghalangi jalan."],
}
QUESTIONS = ["Di depan nomor rumah berapa tepatnya?", "Kapan terakhir kali Anda melihatnya?",
             "Bisakah Anda mengirim foto lokasinya?", "Apakah ada nomor loket atau nama "
             "petugasnya?"]
ANSWERS = ["Di depan rumah nomor 12, dekat warung.", "Terakhir saya lihat kemarin sore.",
           "Lokasinya persis di sebelah masjid.", "Loket nomor 3, pagi sekitar jam 9."]
RESPONSES = ["Tim kami sudah meninjau lokasi dan menjadwalkan perbaikan.",
             "Laporan Anda sudah kami teruskan ke kepala seksi terkait.",
             "Petugas sudah dipanggil untuk dimintai keterangan."]
RESOLUTIONS = ["Perbaikan sudah selesai dikerjakan.", "Sudah ditangani; petugas yang "
               "bersangkutan diberi teguran tertulis.", "Sampah sudah diangkut dan jadwal "
               "angkut ditambah.", "Dokumen sudah selesai dan dapat diambil di loket.",
               "Sudah diperbaiki oleh tim lapangan."]
COMMENTS = {5: "Cepat ditangani, terima kasih.", 4: "Sudah beres walau agak lama.",
            3: "Lumayan.", 2: "Lambat dan kurang jelas.", 1: "Belum beres sama sekali."}


def _pick(rng: random.Random, pairs: Any) -> Any:
    items = list(pairs.items()) if isinstance(pairs, dict) else list(pairs)
    return rng.choices([k for k, _ in items], weights=[w for _, w in items])[0]


class SharedPool:
    """What the domain functions take as a pool (``acquire()``, ``fetch*``,
    ``execute``), over the one connection the history is written on, so it all lands
    in one transaction (their own ``conn.transaction()`` become savepoints)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    def acquire(self) -> SharedPool:
        return self

    async def __aenter__(self) -> asyncpg.Connection:
        return self.conn

    async def __aexit__(self, kind: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


@dataclass(order=True)
class Step:
    at: datetime
    seq: int
    action: Callable[[datetime], Awaitable[None]] = field(compare=False)


@dataclass
class Counts:
    complaints: int = 0
    steps: int = 0
    skipped: int = 0
    events: int = 0


async def has_history(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM intake.complaints WHERE id = $1",
                                    uuid.uuid5(NAMESPACE, "0")))


async def load(settings: Settings, catalog: Catalog, conn: asyncpg.Connection, *,
               today: date | None = None, complaints: int = COMPLAINTS) -> Counts:
    """Write the history in one transaction on ``conn`` (nothing if it is there).
    ``today``: the day the history ends before (today in WIB by default)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
        if await has_history(conn):
            return Counts()
        started = time.monotonic()
        counts = await History(settings, catalog, conn, today).run(complaints)
        log.info("demo history loaded", extra={"complaints": counts.complaints,
                                               "events": counts.events,
                                               "seconds": round(time.monotonic() - started, 1)})
        return counts


class History:
    def __init__(self, settings: Settings, catalog: Catalog, conn: asyncpg.Connection,
                 today: date | None) -> None:
        from services.intake import app as intake_app
        from services.oversight import app as oversight_app
        from services.oversight.clock import ManualClock
        from services.oversight.domain import Context
        from services.oversight.scheduler import Scheduler
        from services.router import app as router_app

        self.settings = settings
        self.catalog = catalog
        self.conn = conn
        self.pool = SharedPool(conn)
        day = today or datetime.now(UTC).astimezone(JAKARTA).date()
        self.end = datetime(day.year, day.month, day.day, tzinfo=JAKARTA).astimezone(UTC)
        self.start = self.end - timedelta(days=DAYS)
        self.rng = random.Random(SEED)
        self.clock = ManualClock(self.start)
        self.scheduler = Scheduler(self.pool, catalog, self.clock)  # type: ignore[arg-type]
        # (consumer name = its schema, topics it reads, handler, filter): the apps' own.
        ctx = Context(catalog=catalog, clock=self.clock)
        self.consumers: list[tuple[str, tuple[str, ...], Any, Any]] = [
            ("router", router_app.TOPICS_READ, *router_app.event_handling(catalog)),
            ("oversight", oversight_app.TOPICS_READ, oversight_app.event_handler(ctx), None),
            ("intake", intake_app.TOPICS_READ, *intake_app.event_handling(settings)),
        ]
        self.cursor = {"intake": 0, "router": 0, "oversight": 0}
        self.agenda: list[Step] = []
        self.seq = 0
        self.counts = Counts()

    # --- the engine -------------------------------------------------------------------

    def at(self, when: datetime, action: Callable[[datetime], Awaitable[None]]) -> None:
        self.seq += 1
        heapq.heappush(self.agenda, Step(when, self.seq, action))

    async def run(self, n: int) -> Counts:
        for i in range(n):
            self.plan_complaint(i)
        swept = self.start
        while self.agenda:
            step = heapq.heappop(self.agenda)
            if step.at >= self.end:
                continue  # not happened yet: the live services carry on from here
            self.clock.set(step.at)
            if step.at - swept >= SWEEP_EVERY:
                # Due deadlines fire before the step (at most SWEEP_EVERY late: the live
                # scheduler sweeps every half second; the demo need not).
                await self.scheduler.sweep()
                await self.deliver()
                swept = step.at
            self.counts.steps += 1
            try:
                async with self.conn.transaction():
                    await step.action(step.at)
            except (LookupError, ApiError):
                # The complaint is not where its script expected (a step the service
                # refuses, such as resolving a withdrawn ticket): as a real user would,
                # the demo moves on. The savepoint undid the step.
                self.counts.skipped += 1
            await self.deliver()
        self.clock.set(self.end)
        await self.scheduler.sweep()
        await self.deliver()
        return self.counts

    async def deliver(self) -> None:
        """Hand every new outbox row to the consumers that read its topic, in outbox
        order, recording each in their ``processed_events`` as the real consumer does;
        until no service has anything new."""
        while True:
            # One round trip for the three outboxes (this runs after every step).
            rows = await self.conn.fetch(
                "SELECT 'intake' AS schema, id, topic, envelope FROM intake.outbox"
                " WHERE id > $1 UNION ALL"
                " SELECT 'router', id, topic, envelope FROM router.outbox WHERE id > $2"
                " UNION ALL"
                " SELECT 'oversight', id, topic, envelope FROM oversight.outbox WHERE id > $3"
                " ORDER BY 1, 2",
                self.cursor["intake"], self.cursor["router"], self.cursor["oversight"])
            if not rows:
                return
            for row in rows:
                self.cursor[row["schema"]] = row["id"]
                self.counts.events += 1
                raw = row["envelope"]
                env = Envelope.from_bytes(raw.encode() if isinstance(raw, str)
                                          else jsoncodec.dumps_bytes(raw))
                for name, reads, handler, accepts in self.consumers:
                    if row["topic"] not in reads or (accepts and not accepts(env)):
                        continue
                    # No savepoint: a handler that fails fails the whole history (one
                    # transaction), which is what a bug in the demo should do.
                    new = await self.conn.fetchval(
                        f'INSERT INTO "{name}".processed_events (consumer, event_id)'
                        " VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
                        name, env.event_id)
                    if new:
                        await handler(self.conn, env)

    # --- one complaint's script -------------------------------------------------------

    def when(self, base: datetime, days: float, *, working_hours: bool = True) -> datetime:
        """``days`` after ``base``, moved into office hours (08-16 WIB) on a weekday."""
        t = base + timedelta(days=days)
        if not working_hours:
            return t
        local = t.astimezone(JAKARTA)
        if local.hour < 8 or local.hour >= 16:
            local = local.replace(hour=8 + self.rng.randrange(8), minute=self.rng.randrange(60))
            if t.astimezone(JAKARTA).hour >= 16:
                local += timedelta(days=1)
        while local.weekday() >= 5:
            local += timedelta(days=1)
        return local.astimezone(UTC)

    def plan_complaint(self, i: int) -> None:
        rng = self.rng
        region = _pick(rng, {r: w for r, w in REGION_WEIGHTS.items()
                             if r in self.catalog.regions})
        offered = {c.code for c in self.catalog.categories_for(region)}
        category = _pick(rng, {c: w for c, w in CATEGORY_WEIGHTS.items() if c in offered})
        # Complaints come in at any hour, more in recent months (the platform grew).
        submitted = self.start + timedelta(days=DAYS * (rng.random() ** 0.8))
        submitted = submitted.replace(hour=rng.randrange(24), minute=rng.randrange(60))
        place = rng.choice(PLACES.get(region, ["pusat kota"]))
        text = rng.choice(TEXTS.get(category, TEXTS["lainnya"])).format(p=place)
        c = Plan(index=i, region=region, category=category, text=text, place=place,
                 channel=_pick(rng, CHANNELS), privacy=_pick(rng, PRIVACY),
                 public=rng.random() < 0.55, secret="", code="")
        self.at(submitted, lambda now: self.submit(c, now))
        # What happens to it: most are handled in time, some late, a few never.
        fate = rng.random()
        c.late_ack = fate < 0.12
        c.late_resolve = 0.08 <= fate < 0.22
        c.silent = fate > 0.98  # the agency never answers: breaches, then the panel
        if c.silent:
            return
        # Work starts when an agency has it: at once by rule, or after the triage
        # officer routes it by hand (a no-op step when a rule routed it).
        start = submitted
        if self.catalog.route(region, category, text).agency is None:
            start = self.when(submitted, rng.uniform(0.2, 2.5))
            self.at(start, lambda now: self.route_by_hand(c, now))
        # Deadlines are working days; about 1.4 calendar days each.
        klass = self.catalog.categories[category].resolution_class
        span = {"light": 2, "normative": 5, "no_investigation": 14,
                "investigation": 60}.get(klass, 5) * 1.4
        ack = self.when(start, rng.uniform(7.5, 11) if c.late_ack
                        else rng.uniform(0.05, 0.4) * min(span, 6))
        self.at(ack, lambda now: self.acknowledge(c, now))
        resolve = self.when(start, span * rng.uniform(1.2, 1.9) + 1 if c.late_resolve
                            else span * rng.uniform(0.4, 0.85))
        resolve = max(resolve, ack + timedelta(hours=3))
        gap = (resolve - ack).total_seconds() / 86400
        if (c.late_ack or c.late_resolve) and rng.random() < 0.35:
            # The panel works part of its queue: a finding on a breached case.
            outcome = "maladministration" if rng.random() < 0.7 else "inconclusive"
            self.at(self.when(ack, rng.uniform(3, 12)),
                    lambda now: self.finding(c, now, outcome))
        if rng.random() < 0.05:
            self.at(self.when(ack, gap * 0.3), lambda now: self.withdraw(c, now))
            return
        if rng.random() < 0.22:
            q, a = rng.choice(QUESTIONS), rng.choice(ANSWERS)
            asked = self.when(ack, gap * 0.2)
            self.at(asked, lambda now: self.ask(c, q, now))
            if rng.random() < 0.1:
                return  # never answered: waiting, then archived by the live services
            answered = asked + timedelta(days=rng.uniform(0.2, 2))
            self.at(answered, lambda now: self.answer(c, a, now))
            resolve = max(resolve, answered + timedelta(hours=4))
        if rng.random() < 0.5:
            m = rng.choice(RESPONSES)
            self.at(self.when(ack, gap * 0.6), lambda now: self.respond(c, m, now))
        note = rng.choice(RESOLUTIONS)
        self.at(resolve, lambda now: self.resolve(c, note, now))
        self.plan_feedback(c, resolve)

    def plan_feedback(self, c: Plan, resolved: datetime, round_: int = 1) -> None:
        rng = self.rng
        if rng.random() < 0.25:
            return  # no feedback: the dispute window closes by itself
        t = self.when(resolved, rng.uniform(0.2, 3), working_hours=False)
        dispute = rng.random() < (0.14 if round_ == 1 else 0.05)
        late = c.late_ack or c.late_resolve
        rating = (rng.choice([1, 2]) if dispute else
                  rng.choices([1, 2, 3, 4, 5], weights=[4, 6, 15, 35, 40] if not late
                              else [15, 25, 30, 20, 10])[0])
        self.at(t, lambda now: self.feedback(c, rating, dispute, now))
        if dispute and round_ == 1:
            # The panel looks at the dispute: mostly sends it back to the agency.
            t2 = self.when(t, rng.uniform(1, 5))
            if rng.random() < 0.75:
                self.at(t2, lambda now: self.panel_reopen(c, now))
                t3 = self.when(t2, rng.uniform(1, 8))
                note = rng.choice(RESOLUTIONS)
                self.at(t3, lambda now: self.resolve(c, note, now))
                self.plan_feedback(c, t3, round_=2)
            else:
                self.at(t2, lambda now: self.finding(c, now, "no_maladministration"))

    # --- the steps: each calls a service's own domain function ------------------------

    async def submit(self, c: Plan, now: datetime) -> None:
        from services.intake import domain
        from services.intake.domain import ReporterIn, SubmitCommand

        rng = random.Random(f"{SEED}-{c.index}")  # per complaint: stable whatever runs first
        name = rng.choice(["Siti Rahmawati", "Budi Santoso", "Yohanes Kambu", "Dewi Lestari",
                           "Rudi Hartono", "Maria Wenda", "Andi Saputra", "Nur Aini"])
        reporter = None
        if c.privacy != "anonymous":
            # RFC 2606 .example: a demo run with SMTP set never mails a real person.
            email = (f"warga{c.index}@demo.awasi.example"
                     if c.channel in ("web", "api") and rng.random() < 0.4 else None)
            reporter = ReporterIn(name=name, email=email)
        cmd = SubmitCommand(region=c.region, category=c.category, description=c.text,
                            privacy=c.privacy,  # type: ignore[arg-type]
                            visibility="public" if c.public else "private",
                            channel=c.channel,  # type: ignore[arg-type]
                            reporter=reporter)
        p = domain.prepare(self.catalog, self.settings, cmd, now=now)
        # Ids from the seeded RNG, so the demo is the same on every machine.
        p.complaint_id = uuid.uuid5(NAMESPACE, str(c.index))
        alphabet = domain.CROCKFORD
        body = "".join(rng.choice(alphabet) for _ in range(8))
        p.tracking_code = f"{c.region}-{body[:4]}-{body[4:]}"
        secret = "".join(rng.choice(alphabet) for _ in range(16))
        p.secret = "-".join(secret[k:k + 4] for k in range(0, 16, 4))
        p.reporter_ref = "rr_" + uuid.uuid5(NAMESPACE, f"ref-{c.index}").hex
        await domain.store(self.conn, [p])
        c.code, c.secret, c.complaint_id = p.tracking_code, p.secret, str(p.complaint_id)
        self.counts.complaints += 1

    async def _ticket(self, c: Plan) -> asyncpg.Record:
        row = await self.conn.fetchrow(
            "SELECT id, status, agency, region FROM router.tickets WHERE complaint_id = $1",
            c.complaint_id)
        if row is None:
            raise LookupError(c.code)
        return row

    def _staff(self, agency: str) -> Any:
        from awasi.identity.store import User
        from services.router.cli import _username

        return User(id=0, username=_username(agency), display_name=f"Petugas {agency}",
                    role="staff", agency=agency, region=None)

    async def route_by_hand(self, c: Plan, now: datetime) -> None:
        from awasi.identity.store import User
        from services.router import domain

        t = await self._ticket(c)
        if t["agency"] is not None:
            return  # a rule routed it at once
        agencies = self.catalog.agencies_in(c.region)
        agency = random.Random(f"{SEED}-agency-{c.index}").choice(agencies).code
        officer = User(id=0, username=f"triage.{c.region.lower()}", display_name="Admin Pemda",
                       role="triage", agency=None, region=c.region)
        await domain.route_by_hand(self.conn, self.catalog, officer, str(t["id"]), agency, now)

    async def acknowledge(self, c: Plan, now: datetime) -> None:
        from services.router import domain

        t = await self._ticket(c)
        if t["agency"] is None:
            raise LookupError(c.code)
        await domain.acknowledge(self.conn, self.catalog, self._staff(t["agency"]),
                                 str(t["id"]), now)

    async def ask(self, c: Plan, question: str, now: datetime) -> None:
        from services.router import domain

        t = await self._ticket(c)
        await domain.request_info(self.conn, self.catalog, self._staff(t["agency"]),
                                  str(t["id"]), question, now)

    async def answer(self, c: Plan, message: str, now: datetime) -> None:
        from services.intake import domain

        await domain.add_info(self.pool, c.code,  # type: ignore[arg-type]
                              domain.InfoIn(secret=c.secret, message=message), now=now)

    async def respond(self, c: Plan, message: str, now: datetime) -> None:
        from services.router import domain

        t = await self._ticket(c)
        await domain.respond(self.conn, self.catalog, self._staff(t["agency"]), str(t["id"]),
                             message, now)

    async def resolve(self, c: Plan, note: str, now: datetime) -> None:
        from services.router import domain

        t = await self._ticket(c)
        await domain.resolve(self.conn, self.catalog, self._staff(t["agency"]), str(t["id"]),
                             note, now)

    async def withdraw(self, c: Plan, now: datetime) -> None:
        from services.intake import domain

        await domain.withdraw(self.pool, c.code,  # type: ignore[arg-type]
                              domain.WithdrawIn(secret=c.secret,
                                                reason="Sudah diselesaikan sendiri oleh warga."),
                              now=now)

    async def feedback(self, c: Plan, rating: int, dispute: bool, now: datetime) -> None:
        from services.intake import domain

        await domain.give_feedback(self.pool, self.catalog, c.code,  # type: ignore[arg-type]
                                   domain.FeedbackIn(secret=c.secret, rating=rating,
                                                     comment=COMMENTS[rating], dispute=dispute),
                                   now=now)

    async def panel_reopen(self, c: Plan, now: datetime) -> None:
        from services.oversight import panel

        await panel.reopen(self.pool, c.code,  # type: ignore[arg-type]
                           panel.ReopenIn(reason="Warga menyatakan masalah belum selesai; "
                                                 "tim pengawas meminta ditangani ulang."),
                           "panel.demo", now)

    async def finding(self, c: Plan, now: datetime, outcome: str) -> None:
        from services.oversight import findings, panel

        malad = outcome == "maladministration"
        # The two-person rule: one demo panel member drafts, the other confirms, so
        # the demo's published findings appear (and are counted) as in real use.
        draft = await findings.draft(
            self.pool, c.code,  # type: ignore[arg-type]
            panel.FindingIn(outcome=outcome,  # type: ignore[arg-type]
                            maladministration_type="undue_delay" if malad else None,
                            recommendation=("Percepat penanganan dan laporkan kepada kepala "
                                            "OPD setiap minggu." if malad else
                                            "Penyelesaian instansi sudah sesuai; sanggahan "
                                            "tidak didukung bukti."),
                            published=True),
            "panel.demo", now)
        await findings.confirm(self.pool, draft["id"], "panel.demo2", now)


@dataclass
class Plan:
    index: int
    region: str
    category: str
    text: str
    place: str
    channel: str
    privacy: str
    public: bool
    secret: str
    code: str
    complaint_id: str = ""
    late_ack: bool = False
    late_resolve: bool = False
    silent: bool = False
