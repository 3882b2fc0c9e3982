// node-webvtt ships no type declarations: the part lib/hls/subtitles.ts uses.
declare module "node-webvtt" {
  export interface Cue {
    identifier: string;
    start: number;
    end: number;
    text: string;
    styles: string;
  }
  export function parse(input: string, options?: { meta?: boolean; strict?: boolean }): { valid: boolean; cues: Cue[]; meta?: Record<string, string> | null };
  export function compile(input: { valid: boolean; cues: Cue[]; meta?: Record<string, string> }): string;
}
