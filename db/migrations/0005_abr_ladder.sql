ALTER TABLE "recordings" ADD COLUMN "abr_status" text;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "abr_progress" real DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "abr_error" text;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "abr_master_path" text;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "abr_dash_path" text;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "abr_renditions" jsonb;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "abr_claimed_by" text;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "abr_claim_expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "recordings" ADD CONSTRAINT "recordings_abr_status_check" CHECK ("recordings"."abr_status" is null or "recordings"."abr_status" in ('pending', 'processing', 'ready', 'failed'));