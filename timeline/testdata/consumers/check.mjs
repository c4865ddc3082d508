// check.mjs FILE... loads each Chrome trace-event JSON file with two real
// consumers of the format, Chrome DevTools' trace engine
// (@paulirish/trace_engine) and TracerBench (@tracerbench/trace-model),
// and exits 1 if either throws or complains on the console (the trace
// engine reports mismatched slices with console.error and carries on).
import fs from 'node:fs';
import { analyzeEvents } from '@paulirish/trace_engine/analyze-trace.mjs';
import { buildModel } from '@tracerbench/trace-model';

let complaints = [];
console.error = (...a) => complaints.push(a.join(' '));
console.warn = console.error;

let failed = false;
for (const file of process.argv.slice(2)) {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  const events = Array.isArray(doc) ? doc : doc.traceEvents;
  for (const [name, load] of [
    ['trace_engine', async () => { await analyzeEvents(events); }],
    ['tracerbench', async () => { buildModel(events); }],
  ]) {
    complaints = [];
    try {
      await load();
    } catch (e) {
      complaints.push(String(e && e.stack || e));
    }
    if (complaints.length > 0) {
      failed = true;
      process.stdout.write(`${file}: ${name}: ${complaints.slice(0, 5).join('\n')}\n`);
    } else {
      process.stdout.write(`${file}: ${name}: ok (${events.length} events)\n`);
    }
  }
}
process.exit(failed ? 1 : 0);
