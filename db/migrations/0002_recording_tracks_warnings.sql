ALTER TABLE "recordings" ADD COLUMN "warnings" jsonb;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "audio_tracks" jsonb;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "subtitles" jsonb;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "extra_keys" text[];