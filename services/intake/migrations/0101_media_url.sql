-- Open311's media_url: a link the reporter gave (kept, never fetched).
ALTER TABLE complaints ADD COLUMN media_url text;
