/**
 * V8 settings for a message broker's heap, set when this module is evaluated: it is the first
 * import of the entry points (cli.ts, bridge.ts), before anything allocates much.
 *
 * Allocation-site pretenuring is off. V8 watches which allocation sites' objects survive
 * scavenges and, past a threshold, allocates that site's objects in the old generation from
 * then on. A bridge starting under load (many rules to compile, cold code, a backlog of
 * publishes waiting for Kafka) sees its per-message objects survive for a moment, and every
 * publish's objects were allocated old for the rest of the process: each one then waited for a
 * mark-compact to be freed. Measured on the bench (`--scenario rules`): CPU per message with
 * 1,000 and 10,000 rules 22–26 → 9–10 µs, and the same as with 10 rules.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-allocation-site-pretenuring');
