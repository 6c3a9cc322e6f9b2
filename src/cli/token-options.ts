/**
 * The access-token flags, read the same way by `serve`, `gateway` and `token` (flag, then
 * environment variable): the keys (src/auth/keys.ts) and the longest lifetime accepted.
 */
import { loadTokenKeys, TokenKeyError, type TokenKeySet } from '../auth/keys.ts';
import { DEFAULT_TOKEN_POLICY, parseDuration, TokenVerifier, type TokenPolicy } from '../auth/tokens.ts';
import { FramehostError } from '../errors.ts';
import { stringOption, UsageError, type ParsedCommandLine } from './args.ts';

const nonEmpty = (value: string | undefined): string | undefined => (value === undefined || value === '' ? undefined : value);

export interface TokenSettings {
  readonly keys: TokenKeySet | null;
  readonly policy: TokenPolicy;
}

/** Read the flags; a key that cannot be used is a usage error that says why. */
export async function tokenSettings(v: ParsedCommandLine['values'], env: NodeJS.ProcessEnv): Promise<TokenSettings> {
  const key = stringOption(v, 'token-key') ?? nonEmpty(env.FRAMEHOST_TOKEN_KEY);
  const publicKeys = stringOption(v, 'token-public-key') ?? nonEmpty(env.FRAMEHOST_TOKEN_PUBLIC_KEY);
  const maxTtl = stringOption(v, 'token-max-ttl') ?? nonEmpty(env.FRAMEHOST_TOKEN_MAX_TTL);
  let maxLifetimeS = DEFAULT_TOKEN_POLICY.maxLifetimeS;
  try {
    if (maxTtl !== undefined) maxLifetimeS = parseDuration(maxTtl);
    if (!Number.isSafeInteger(maxLifetimeS) || maxLifetimeS < 1) throw new UsageError('--token-max-ttl must be 1 second or more');
    return { keys: await loadTokenKeys({ ...(key ? { key } : {}), ...(publicKeys ? { publicKeys } : {}) }), policy: { ...DEFAULT_TOKEN_POLICY, maxLifetimeS } };
  } catch (err) {
    if (err instanceof UsageError) throw err; // already says which flag (it is a FramehostError too)
    if (err instanceof TokenKeyError || err instanceof FramehostError) throw new UsageError(`--token-key/--token-public-key/--token-max-ttl: ${err.message}`);
    throw err;
  }
}

/** The verifier a server checks tokens with; undefined when no token key is configured. */
export async function tokenVerifier(v: ParsedCommandLine['values'], env: NodeJS.ProcessEnv): Promise<TokenVerifier | undefined> {
  const { keys, policy } = await tokenSettings(v, env);
  return keys ? new TokenVerifier(keys, policy) : undefined;
}
