CREATE TABLE "recordings" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"stream_id" text NOT NULL,
	"user_id" text,
	"title" text NOT NULL,
	"duration_seconds" double precision,
	"file_path" text,
	"thumbnail_path" text,
	"file_size_bytes" bigint,
	"status" text DEFAULT 'processing' NOT NULL,
	"source_prefix" text NOT NULL,
	"playlist_key" text,
	"playlist_etag" text,
	"error" text,
	"progress" real DEFAULT 0 NOT NULL,
	"width" integer,
	"height" integer,
	"video_codec" text,
	"audio_codec" text,
	"storyboard_path" text,
	"storyboard_vtt_path" text,
	"claimed_by" text,
	"claim_expires_at" timestamp with time zone,
	"attempts" integer DEFAULT 0 NOT NULL,
	"session_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "recordings_status_check" CHECK ("recordings"."status" in ('live', 'processing', 'ready', 'failed')),
	CONSTRAINT "recordings_progress_check" CHECK ("recordings"."progress" >= 0 and "recordings"."progress" <= 1)
);
--> statement-breakpoint
CREATE TABLE "streams" (
	"name" text PRIMARY KEY NOT NULL,
	"secret" text NOT NULL,
	"user_id" text,
	"title" text,
	"state" text DEFAULT 'idle' NOT NULL,
	"current_session" text,
	"current_recording_id" uuid,
	"last_connected_at" timestamp with time zone,
	"last_segment_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "streams_state_check" CHECK ("streams"."state" in ('idle', 'live', 'disabled'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX "recordings_source_prefix_key" ON "recordings" USING btree ("source_prefix");--> statement-breakpoint
CREATE INDEX "recordings_created_at_id_idx" ON "recordings" USING btree ("created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "recordings_status_created_at_idx" ON "recordings" USING btree ("status","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "recordings_stream_created_at_idx" ON "recordings" USING btree ("stream_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);