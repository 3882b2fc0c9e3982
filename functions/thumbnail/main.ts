import { runFunction } from "../runtime/replica.js";
import { thumbnailFunction } from "./function.js";

// One thumbnail replica: `make up` starts THUMBNAIL_REPLICAS of these.
await runFunction(thumbnailFunction);
