import { runFunction } from "../runtime/replica.js";
import { convert, giveUpConvert, prepareConvert } from "./convert.js";

// One convert replica: `make up` starts CONVERT_REPLICAS of these (REPLICA_ID convert-1, convert-2, ...).
await runFunction({ name: "convert", consumer: (c) => c.nats.consumers.convert, handler: convert, giveUp: giveUpConvert, prepare: prepareConvert });
