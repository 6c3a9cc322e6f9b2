/**
 * `framehost token --role player --ttl 10m [--sub ID]`: mint one access token with the
 * `--token-key` and print it on stdout (for scripts, tests, and an operator's own tools; a
 * backend serving many users calls `createToken()` from the library instead).
 */
import { createToken } from '../auth/tokens.ts';
import { ROLES, type Role } from '../auth/principal.ts';
import { FramehostError } from '../errors.ts';
import { stringOption, UsageError, type ParsedCommandLine } from './args.ts';
import { tokenSettings } from './token-options.ts';

export async function runToken(cli: ParsedCommandLine): Promise<number> {
  const v = cli.values;
  const role = stringOption(v, 'role');
  if (!role || !(ROLES as readonly string[]).includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
  const { keys, policy } = await tokenSettings(v, process.env);
  if (!keys?.signer) throw new UsageError('minting needs a signing key: --token-key SECRET|PEM (or FRAMEHOST_TOKEN_KEY); a public key only verifies');
  const sub = stringOption(v, 'sub');
  try {
    const token = await createToken({ key: keys.signer, role: role as Role, ttl: stringOption(v, 'ttl') ?? '10m', maxLifetimeS: policy.maxLifetimeS, ...(sub !== undefined ? { sub } : {}) });
    process.stdout.write(`${token}\n`);
    return 0;
  } catch (err) {
    if (err instanceof FramehostError) throw new UsageError(err.message);
    throw err;
  }
}
