"""Prometheus counters of the bot, registered in the intake app's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class BotMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.updates = Counter(
            "awasi_telegram_updates_total", "Telegram updates received, by outcome",
            ["outcome"], registry=registry)
        self.notifications = Counter(
            "awasi_telegram_notifications_total",
            "Telegram notification attempts, by outcome (sent, retry, blocked, failed)",
            ["outcome"], registry=registry)
