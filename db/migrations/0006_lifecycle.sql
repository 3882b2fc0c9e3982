ALTER TABLE "recordings" ADD COLUMN "source_bytes" bigint;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "pinned" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "ready_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "source_deleted_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "recordings" ADD COLUMN "source_deleted_reason" text;--> statement-breakpoint
ALTER TABLE "streams" ADD COLUMN "disabled" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "streams" ADD COLUMN "max_broadcast_seconds" integer;--> statement-breakpoint
ALTER TABLE "streams" ADD COLUMN "source_retention" text;--> statement-breakpoint
ALTER TABLE "streams" ADD COLUMN "recording_retention_days" double precision;--> statement-breakpoint
CREATE INDEX "recordings_ready_at_idx" ON "recordings" USING btree ("ready_at") WHERE "recordings"."status" = 'ready';