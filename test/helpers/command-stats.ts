/**
 * Test helper: how many commands a server has run, from `INFO commandstats`, to prove that an operation
 * sent nothing (the count is unchanged) without MONITOR.
 */

/**
 * Commands that are not a client's work on keys: the counting itself (`info`), connection handshakes and
 * health checks, replication traffic, and cluster topology queries, which a cluster client may send on its
 * own.
 */
const BOOKKEEPING =
  /^(info|ping|hello|auth|select|replconf|psync|sync|client\|.*|command\|.*|cluster\|.*|acl\|.*|config\|.*)$/;

/** Sum of `calls` over the commands of an `INFO commandstats` reply, bookkeeping commands excluded. */
export function commandCalls(info: string): number {
  let total = 0;
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (!BOOKKEEPING.test(match[1] as string)) total += Number(match[2]);
  }
  return total;
}
