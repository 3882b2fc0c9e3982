import { runFunction } from "../runtime/replica.js";
import { convertFunction } from "./function.js";

// One convert replica: `make up` starts CONVERT_REPLICAS of these (REPLICA_ID convert-1, convert-2, ...).
await runFunction(convertFunction);
