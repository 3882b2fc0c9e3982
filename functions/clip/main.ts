import { runFunction } from "../runtime/replica.js";
import { clipFunction } from "./function.js";

// One clip replica: `make up` starts CLIP_REPLICAS of these (REPLICA_ID clip-1, ...).
await runFunction(clipFunction);
