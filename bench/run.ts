// `make bench`: runs every bench/*.bench.ts in turn, each in its own process, and says which failed.
// Adding a benchmark is adding a file named <what>.bench.ts here. Run some only by naming them:
//   node --import tsx bench/run.ts convert thumbnail      (files whose name starts with these words)
import { readdirSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.startsWith(w)))
  .sort();

if (files.length === 0) {
  console.error(`bench: no benchmark matches ${wanted.join(", ") || "bench/*.bench.ts"}; the files are: ${readdirSync(here).filter((f) => f.endsWith(".bench.ts")).join(", ")}`);
  process.exit(2);
}

const failed: string[] = [];
for (const file of files) {
  console.log(`\n=== ${file} ===`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ["--import", "tsx", join(here, file)], { stdio: "inherit", cwd: join(here, "..") });
  const status = r.status === 0 ? "ok" : `failed (exit ${r.status ?? r.signal})`;
  if (r.status !== 0) failed.push(file);
  console.log(`=== ${file}: ${status} in ${((Date.now() - t0) / 1000).toFixed(0)} s ===`);
}
if (failed.length) {
  console.error(`\nbench: ${failed.length} of ${files.length} failed: ${failed.join(", ")}`);
  process.exit(1);
}
console.log(`\nbench: ${files.length} benchmark(s) done`);
