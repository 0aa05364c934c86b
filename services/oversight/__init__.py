"""Oversight: tamper-evident timelines, deadlines and escalation, the panel, the dashboard."""
