"""One example payload per event type that travels on a topic, for the AsyncAPI document.

Built through the payload models, so an example that no longer fits its model fails
here (at generation time) rather than misleading a reader. Invented data only: no
real person, and like every payload, no personal data of a reporter.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from awasi.events import payloads as p

_AT = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
_DEADLINES = p.Deadlines(acknowledge_by=datetime(2026, 11, 26, 3, 0, tzinfo=UTC),
                         resolve_by=datetime(2026, 12, 21, 3, 0, tzinfo=UTC))
_AGENCY = "DLH-3273"

EXAMPLES: dict[str, p.Payload] = {ex.EVENT_TYPE: ex for ex in (
    p.ComplaintSubmitted(
        tracking_code="AWS-7K3Q-9TXM", region="3273", category="sampah",
        title="Sampah menumpuk", description="Sampah tidak diangkut sejak seminggu.",
        location=p.Location(lat=-6.9147, lon=107.6098, address="Jl. Braga, Bandung"),
        privacy="confidential", reporter_ref="r_5f0c1e2d9a", channel="web",
        submitted_at=_AT, visibility="public"),
    p.ComplaintInfoAdded(message="Foto tambahan dari lokasi.", photo_ids=("ph_01",)),
    p.ComplaintFeedbackGiven(rating=4, comment="Sudah diangkut, terima kasih."),
    p.ComplaintWithdrawn(reason="Sudah selesai sendiri."),
    p.SurveyResponseSubmitted(
        unit="DUKCAPIL-3273-LOKET1", agency="DUKCAPIL-3273", region="3273",
        answers={f"U{i}": 3 for i in range(1, 10)}, channel="web", submitted_at=_AT),
    p.ComplaintSupported(support_count=12),
    p.ComplaintRouted(tracking_code="AWS-7K3Q-9TXM", region="3273", category="sampah",
                      agency=_AGENCY, rule="sampah@3273", deadlines=_DEADLINES),
    p.ComplaintNeedsTriage(tracking_code="AWS-7K3Q-9TXM", region="3273",
                           category="lainnya",
                           deadlines=p.Deadlines(triage_by=datetime(2026, 11, 24, 3, 0,
                                                                    tzinfo=UTC))),
    p.TicketAcknowledged(agency=_AGENCY, deadlines=_DEADLINES),
    p.TicketAssigneeChanged(agency=_AGENCY, assignee="dlh.petugas1", previous=None),
    p.TicketInfoRequested(agency=_AGENCY, question="Di RT/RW berapa?", paused_at=_AT),
    p.TicketResponded(agency=_AGENCY, message="Truk dijadwalkan besok pagi."),
    p.TicketAttachmentAdded(agency=_AGENCY, attachment_id="0b8e5a3c-2f1d-4c7e-9a6b-1d2e3f4a5b6c",
                            kind="pdf", content_type="application/pdf", size=48213,
                            file_name="surat-jawaban.pdf"),
    p.TicketResolved(agency=_AGENCY, note="Sampah sudah diangkut.", deadlines=_DEADLINES),
    p.TicketTransferred(from_agency=_AGENCY, agency="DPUPR-3273",
                        reason="Saluran air, bukan sampah.", deadlines=_DEADLINES),
    p.TicketReopened(agency=_AGENCY, reason="Pelapor menyanggah.", deadlines=_DEADLINES),
    p.TicketClockResumed(agency=_AGENCY, resumed_at=_AT, deadlines=_DEADLINES),
    p.TicketRejected(reason_code="duplicate", reason="Sama dengan AWS-7K3Q-9TXM.",
                     duplicate_of="AWS-7K3Q-9TXM"),
    p.TicketDuplicateLinked(original_complaint_id="5c1b7d2e-8f4a-4e61-9c0d-2a7b3e9f1d64",
                            original_tracking_code="AWS-7K3Q-9TXM", agency=_AGENCY),
    p.TicketReturnedToTriage(from_agency="DPUPR-3273", reason="Dipindahkan dua kali.",
                             deadlines=p.Deadlines(triage_by=datetime(2026, 11, 26, 3, 0,
                                                                      tzinfo=UTC))),
    p.TicketMovedRegion(from_region="3273", region="3204", reason="Lokasi di Kab. Bandung.",
                        deadlines=p.Deadlines(triage_by=datetime(2026, 11, 26, 3, 0,
                                                                 tzinfo=UTC))),
    p.DeadlineWarning(kind="resolve", agency=_AGENCY,
                      due_at=datetime(2026, 12, 21, 3, 0, tzinfo=UTC)),
    p.DeadlineBreached(kind="acknowledge", agency=_AGENCY,
                       due_at=datetime(2026, 11, 26, 3, 0, tzinfo=UTC)),
    p.CaseEscalated(level=1, kind="acknowledge", agency=_AGENCY),
    p.FindingRecorded(outcome="maladministration", maladministration_type="undue_delay",
                      recommendation="Tetapkan jadwal angkut mingguan.", published=True),
    p.CaseReopened(reason="Bukti baru dari pelapor."),
    p.CaseClaimed(),
    p.CaseClosed(reason="dispute_window_passed"),
    p.CaseInfoReminder(archive_at=datetime(2026, 12, 23, 3, 0, tzinfo=UTC)),
    p.CaseArchived(revive_until=datetime(2027, 1, 22, 3, 0, tzinfo=UTC)),
    p.RecommendationIssued(
        recommendation_id="9b2f6c1e-0d7a-4c7e-9a51-3f0e2d1c4b5a", region="3273",
        agency=_AGENCY, what="Publikasikan jadwal angkut sampah.",
        why="Tiga temuan penundaan dalam satu triwulan.", due_date=date(2027, 2, 28),
        source_kind="finding", source_ref="AWS-7K3Q-9TXM"),
    p.RecommendationAnswered(recommendation_id="9b2f6c1e-0d7a-4c7e-9a51-3f0e2d1c4b5a",
                             agency=_AGENCY, status="planned",
                             note="Jadwal terbit Januari."),
    p.AuditCheckpoint(seq=42, head_hash="a" * 64, time="2026-11-23T03:00:00+00:00",
                      key_id="k1", algorithm="Ed25519", signature="c2lnbmF0dXJl",
                      public_key="cHVibGljLWtleQ"),
)}
