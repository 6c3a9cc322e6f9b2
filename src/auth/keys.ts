/**
 * The keys that sign and verify access tokens, read from the flags the same way for `serve`,
 * `gateway` and `token`:
 *
 * - `--token-key` (FRAMEHOST_TOKEN_KEY): the signing key. A value naming an existing file is read
 *   as a PEM private key (Ed25519 → EdDSA, P-256 → ES256, RSA → RS256); any other value is an
 *   HS256 secret, 32 characters at least (a shorter one could be guessed from any token).
 * - `--token-public-key` (FRAMEHOST_TOKEN_PUBLIC_KEY): verify-only keys, a comma-separated list
 *   of files, each a PEM public key or a JWK Set (`{"keys":[…]}`, where an HS256 secret can be an
 *   `oct` key). Several keys are how a rotation runs: the old and the new key both verify.
 *
 * Every key has a key id (`kid`): the JWK's own `kid` in a JWK Set, else the key's RFC 7638
 * thumbprint, so a signer and a verifier holding the same key agree on its id with nothing to
 * configure. Each key is pinned to the one algorithm its type allows.
 */
import { createPrivateKey, createPublicKey, createSecretKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { calculateJwkThumbprint, exportJWK } from 'jose';

export type TokenAlgorithm = 'HS256' | 'EdDSA' | 'ES256' | 'RS256';

export interface TokenKey {
  readonly kid: string;
  readonly alg: TokenAlgorithm;
  readonly verifyKey: KeyObject;
}

export interface SigningKey extends TokenKey {
  readonly signKey: KeyObject;
}

export interface TokenKeySet {
  /** The key new tokens are signed with; null on a verify-only server. */
  readonly signer: SigningKey | null;
  /** Every key a token may be signed with, the signer's included; kids are unique. */
  readonly keys: readonly TokenKey[];
}

/** An HS256 secret shorter than this is refused: anyone holding one token can test guesses offline. */
export const MIN_SECRET_LENGTH = 32;

/** A key setting that cannot be used: the message says which and why (the CLI shows it as a usage error). */
export class TokenKeyError extends Error {
  override readonly name = 'TokenKeyError';
}

/** The one algorithm a key of this type may sign with (no choice left to a token's header). */
function algorithmOf(key: KeyObject): TokenAlgorithm {
  if (key.type === 'secret') return 'HS256';
  const type = key.asymmetricKeyType;
  if (type === 'ed25519') return 'EdDSA';
  if (type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  if (type === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048) return 'RS256';
  throw new TokenKeyError(`unsupported key type ${type ?? key.type}: use HS256 (a secret), Ed25519, P-256 or RSA of 2048+ bits`);
}

const thumbprint = async (key: KeyObject): Promise<string> => calculateJwkThumbprint(await exportJWK(key));

const isFile = (value: string): boolean => value.length < 4096 && existsSync(value) && statSync(value).isFile();

function secretKey(secret: string): KeyObject {
  if (secret.length < MIN_SECRET_LENGTH) throw new TokenKeyError(`an HS256 token secret needs ${MIN_SECRET_LENGTH}+ characters (or give the path of a PEM private key)`);
  return createSecretKey(Buffer.from(secret, 'utf8'));
}

/** `--token-key`: a PEM private key's path, or an HS256 secret. */
export async function loadSigningKey(value: string): Promise<SigningKey> {
  let signKey: KeyObject;
  if (isFile(value)) {
    const pem = readFileSync(value, 'utf8');
    if (!pem.includes('PRIVATE KEY-----')) throw new TokenKeyError(`${value}: not a PEM private key`);
    try {
      signKey = createPrivateKey(pem);
    } catch (err) {
      throw new TokenKeyError(`${value}: ${(err as Error).message}`);
    }
  } else {
    signKey = secretKey(value);
  }
  const verifyKey = signKey.type === 'secret' ? signKey : createPublicKey(signKey);
  return { kid: await thumbprint(verifyKey), alg: algorithmOf(signKey), verifyKey, signKey };
}

async function keysOfJwkSet(path: string, text: string): Promise<TokenKey[]> {
  let set: unknown;
  try {
    set = JSON.parse(text);
  } catch {
    throw new TokenKeyError(`${path}: not JSON`);
  }
  const list = (set as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list) || list.length === 0) throw new TokenKeyError(`${path}: a JWK Set is {"keys":[…]} with one key at least`);
  return Promise.all(
    list.map(async (jwk: JsonWebKey & { kid?: unknown; alg?: unknown }) => {
      let key: KeyObject;
      try {
        key = jwk.kty === 'oct' ? secretKey(Buffer.from(String(jwk.k ?? ''), 'base64url').toString('utf8')) : createPublicKey({ key: jwk, format: 'jwk' });
      } catch (err) {
        if (err instanceof TokenKeyError) throw err;
        throw new TokenKeyError(`${path}: ${(err as Error).message}`);
      }
      const alg = algorithmOf(key);
      if (jwk.alg !== undefined && jwk.alg !== alg) throw new TokenKeyError(`${path}: key ${String(jwk.kid)} says alg ${String(jwk.alg)}, but its type signs ${alg}`);
      return { kid: typeof jwk.kid === 'string' && jwk.kid ? jwk.kid : await thumbprint(key), alg, verifyKey: key };
    }),
  );
}

/** One `--token-public-key` entry: a PEM public key (a private one gives its public half) or a JWK Set. */
async function loadVerifyKeys(path: string): Promise<TokenKey[]> {
  if (!isFile(path)) throw new TokenKeyError(`${path}: no such file (the token public key is a PEM or JWK Set file)`);
  const text = readFileSync(path, 'utf8');
  if (text.trimStart().startsWith('{')) return keysOfJwkSet(path, text);
  let key: KeyObject;
  try {
    key = createPublicKey(text);
  } catch (err) {
    throw new TokenKeyError(`${path}: ${(err as Error).message}`);
  }
  return [{ kid: await thumbprint(key), alg: algorithmOf(key), verifyKey: key }];
}

/** The key set of a server or the `token` command; null when no key is configured at all. */
export async function loadTokenKeys(settings: { readonly key?: string; readonly publicKeys?: string }): Promise<TokenKeySet | null> {
  const signer = settings.key ? await loadSigningKey(settings.key) : null;
  const paths = (settings.publicKeys ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  const verifiers = (await Promise.all(paths.map(loadVerifyKeys))).flat();
  if (!signer && verifiers.length === 0) return null;
  const byKid = new Map<string, TokenKey>();
  for (const k of [...(signer ? [signer] : []), ...verifiers]) {
    const known = byKid.get(k.kid);
    // The same key listed twice (the signer's public half among the verifiers) is one key.
    if (known && !(known.alg === k.alg && known.verifyKey.equals(k.verifyKey))) throw new TokenKeyError(`two different keys have the key id ${k.kid}`);
    byKid.set(k.kid, known ?? k);
  }
  return { signer, keys: [...byKid.values()] };
}
