/** Test helper: the README's per-tenant ACL recipe as `redis-cli` arguments. */

/**
 * `ACL SETUSER <tenant> ...` of the README's recipe (own keys only, no channels, no dangerous commands),
 * with `extra` rules appended (e.g. `+cluster|slots` for a cluster).
 */
export function aclRecipe(tenant: string, password: string, extra: readonly string[] = []): string[] {
  return [
    'ACL',
    'SETUSER',
    tenant,
    'reset',
    'on',
    `>${password}`,
    `~${tenant}:*`,
    'resetchannels',
    '-@all',
    '+@read',
    '+@write',
    '+@keyspace',
    '+@connection',
    '+@transaction',
    '-@dangerous',
    ...extra,
  ];
}
