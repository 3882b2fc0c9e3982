import { runFunction } from "../runtime/replica.js";
import { webhooksFunction } from "./function.js";

// One webhooks replica: `make up` starts WEBHOOKS_REPLICAS of these (REPLICA_ID webhooks-1, ...).
await runFunction(webhooksFunction);
