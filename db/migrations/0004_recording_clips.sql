ALTER TABLE "recordings" ADD COLUMN "kind" text DEFAULT 'recording' NOT NULL;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "parent_id" uuid;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "clip_start" double precision;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "clip_end" double precision;--> statement-breakpoint
CREATE INDEX "recordings_parent_created_at_idx" ON "recordings" USING btree ("parent_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
ALTER TABLE "recordings" ADD CONSTRAINT "recordings_kind_check" CHECK ("recordings"."kind" in ('recording', 'clip'));