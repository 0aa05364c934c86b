-- Photos on public pages (services/intake/photos.py, "public links"): only the photos
-- a citizen sent with the report itself may appear on its public page, never those
-- of a later follow-up (information added is private, like its text).
ALTER TABLE photos ADD COLUMN at_filing boolean NOT NULL DEFAULT false;

-- Photos stored before this column: a photo is the filing's unless a follow-up with
-- photos came at (or within a minute after) the moment it was stored. In doubt, a
-- photo stays off the public page.
UPDATE photos p SET at_filing = true
WHERE NOT EXISTS (
    SELECT 1 FROM timeline t
    WHERE t.complaint_id = p.complaint_id AND t.kind = 'info_added'
      AND coalesce((t.data->>'photos')::int, 0) > 0
      AND t.at <= p.created_at + interval '1 minute');
