"""Intake: takes complaints from the web form, JSON API, Open311 and Telegram."""
