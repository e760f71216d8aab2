// Decode every message of a jepa-mpc run recording (MCAP: `eval --record`, the planner node's record_path)
// with the libraries Foxglove reads ROS 2 MCAP files with: @mcap/core for the records, @foxglove/rosmsg for
// the ros2msg schemas, @foxglove/rosmsg2-serialization for the CDR messages. Prints the profile, the
// messages per topic and type, one message of each topic, and the decode errors; exits 1 on any error.
//   cd bench/foxglove_decode && npm install && node decode.mjs RUN.mcap
import { readFileSync } from "node:fs";
import { McapStreamReader } from "@mcap/core";
import { parse } from "@foxglove/rosmsg";
import { MessageReader } from "@foxglove/rosmsg2-serialization";

const data = readFileSync(process.argv[2]);
const reader = new McapStreamReader();
reader.append(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
const schemas = new Map(), channels = new Map(), counts = {}, sample = {};
let errors = 0, profile = "";
for (let rec; (rec = reader.nextRecord()); ) {
  if (rec.type === "Header") profile = rec.profile;
  if (rec.type === "Schema") schemas.set(rec.id, rec);
  if (rec.type === "Channel") {
    const s = schemas.get(rec.schemaId);
    if (s.encoding !== "ros2msg" || rec.messageEncoding !== "cdr") throw new Error(`${rec.topic}: ${s.encoding}/${rec.messageEncoding}`);
    const defs = parse(new TextDecoder().decode(s.data), { ros2: true });
    channels.set(rec.id, { topic: rec.topic, type: s.name, reader: new MessageReader(defs) });
  }
  if (rec.type === "Message") {
    const ch = channels.get(rec.channelId);
    try {
      const msg = ch.reader.readMessage(rec.data);
      counts[`${ch.topic} (${ch.type})`] = (counts[`${ch.topic} (${ch.type})`] ?? 0) + 1;
      if (!sample[ch.topic]) sample[ch.topic] = JSON.stringify(msg, (k, v) => (ArrayBuffer.isView(v) ? `<${v.length} values>` : v)).slice(0, 160);
    } catch (e) { errors++; console.error(ch.topic, e.message); }
  }
}
console.log(`profile ${profile}; ${channels.size} channels; decode errors ${errors}`);
for (const [k, v] of Object.entries(counts)) console.log(`${v}\t${k}`);
for (const [k, v] of Object.entries(sample)) console.log(`${k}: ${v}`);
if (errors || profile !== "ros2") process.exit(1);
