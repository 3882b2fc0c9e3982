import { runFunction } from "../runtime/replica.js";
import { packageFunction } from "./function.js";

// One package replica: `make up` starts PACKAGE_REPLICAS of these (REPLICA_ID package-1, ...).
await runFunction(packageFunction);
