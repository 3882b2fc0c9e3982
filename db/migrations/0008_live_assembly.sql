CREATE TABLE "live_assemblies" (
	"source_prefix" text PRIMARY KEY NOT NULL,
	"playlist_key" text NOT NULL,
	"mp4_key" text NOT NULL,
	"upload_id" text NOT NULL,
	"status" text DEFAULT 'assembling' NOT NULL,
	"reason" text,
	"init" "bytea",
	"head_segments" integer,
	"head_bytes" bigint,
	"segments_done" integer DEFAULT 0 NOT NULL,
	"uri_hash" text,
	"parts_bytes" bigint DEFAULT 0 NOT NULL,
	"facts" jsonb,
	"lease_owner" text,
	"lease_expires_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "live_assemblies_status_check" CHECK ("live_assemblies"."status" in ('assembling', 'abandoned', 'complete'))
);
--> statement-breakpoint
CREATE TABLE "live_assembly_parts" (
	"source_prefix" text NOT NULL,
	"part_number" integer NOT NULL,
	"etag" text NOT NULL,
	"first_segment" integer NOT NULL,
	"segments" integer NOT NULL,
	"bytes" bigint NOT NULL,
	"tables" "bytea" NOT NULL,
	CONSTRAINT "live_assembly_parts_source_prefix_part_number_pk" PRIMARY KEY("source_prefix","part_number")
);
--> statement-breakpoint
ALTER TABLE "live_assembly_parts" ADD CONSTRAINT "live_assembly_parts_source_prefix_live_assemblies_source_prefix_fk" FOREIGN KEY ("source_prefix") REFERENCES "public"."live_assemblies"("source_prefix") ON DELETE cascade ON UPDATE no action;