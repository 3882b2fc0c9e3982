-- Search (`GET /recordings?q=`) matches a substring of the title or the stream name, case-insensitively:
-- a trigram GIN index lets `ILIKE '%term%'` skip scanning the whole table.
CREATE EXTENSION IF NOT EXISTS pg_trgm;--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "recordings_search_trgm_idx" ON "recordings" USING gin (("title" || ' ' || "stream_id") gin_trgm_ops);
