/** `--publish` / FRAMEHOST_PUBLISH: the janus:// and whip+http(s):// URL forms, `--publish-token`, and the rule that it needs the room sender. */
import { describe, expect, it } from 'vitest';
import { parseCommandLine, UsageError } from '../src/cli/args.ts';
import { parseMediaOptions } from '../src/cli/media-options.ts';
import { parseJanusTarget } from '../src/media/janus/target.ts';
import type { PublishTarget } from '../src/media/publish-target.ts';
import { parseWhipTarget } from '../src/media/whip/target.ts';

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseMediaOptions(parseCommandLine('serve', argv, env).values, env);
const target = (argv: string[], env: NodeJS.ProcessEnv = {}): PublishTarget | undefined => parse(argv, env).webrtc?.publish ?? undefined;
const room = (t: PublishTarget | undefined): number | undefined => (t?.kind === 'janus' ? t.room : undefined);

describe('--publish', () => {
  it('janus://HOST:PORT/ROOM is the REST API at /janus; a base path and TLS by scheme; display by query', () => {
    expect(parseJanusTarget('janus://127.0.0.1:8088/1234')).toEqual({ kind: 'janus', endpoint: 'http://127.0.0.1:8088/janus', room: 1234, display: 'framehost', label: 'janus://127.0.0.1:8088/1234' });
    expect(parseJanusTarget('janus+https://sfu.example/api/v1/7?display=node-a')).toEqual({ kind: 'janus', endpoint: 'https://sfu.example/api/v1', room: 7, display: 'node-a', label: 'janus+https://sfu.example/api/v1/7' });
  });

  it('refuses other schemes, credentials, a missing or bad room id, an empty display', () => {
    for (const bad of ['http://127.0.0.1:8088/1', 'whip://x/1', 'janus://u:p@h/1', 'janus://h:8088/', 'janus://h/abc', 'janus://h/0', 'janus://h/1?display=', 'not a url']) {
      expect(typeof parseJanusTarget(bad), bad).toBe('string');
    }
  });

  it('from the flag or FRAMEHOST_PUBLISH, with --webrtc-sender room', () => {
    expect(room(target(['--webrtc-sender', 'room', '--publish', 'janus://127.0.0.1:8088/5']))).toBe(5);
    expect(parse([], { FRAMEHOST_WEBRTC_SENDER: 'room', FRAMEHOST_PUBLISH: 'janus://10.0.0.2:8088/6' }).webrtc?.publish?.endpoint).toBe('http://10.0.0.2:8088/janus');
    expect(parse(['--webrtc-sender', 'room']).webrtc?.publish).toBeUndefined();
  });

  it('is a usage error with the wrtc sender (wrtc and node-datachannel do not share a process) or with a bad URL', () => {
    expect(room(target(['--publish', 'janus://127.0.0.1:8088/5']))).toBe(5); // the room is the default sender
    expect(() => parse(['--webrtc-sender', 'wrtc', '--publish', 'janus://127.0.0.1:8088/5'])).toThrow(UsageError);
    expect(() => parse(['--webrtc-sender', 'wrtc', '--publish', 'janus://127.0.0.1:8088/5'])).toThrow(/--webrtc-sender wrtc/);
    expect(() => parse(['--webrtc-sender', 'room', '--publish', 'rtmp://x/1'])).toThrow(/janus:\/\//);
  });

  it('whip+http:// and whip+https:// are the WHIP endpoint at that URL, path and query kept; the token rides along', () => {
    expect(parseWhipTarget('whip+http://127.0.0.1:8889/cam/whip', null)).toEqual({ kind: 'whip', endpoint: 'http://127.0.0.1:8889/cam/whip', token: null, label: 'whip+http://127.0.0.1:8889/cam/whip' });
    expect(parseWhipTarget('whip+https://lk.example/w?room=a', 'eyJhbGciOi.J9x-y_z')).toEqual({ kind: 'whip', endpoint: 'https://lk.example/w?room=a', token: 'eyJhbGciOi.J9x-y_z', label: 'whip+https://lk.example/w?room=a' });
    expect(target(['--publish', 'whip+http://10.0.0.2:8889/cam/whip', '--publish-token', 's3cret'])).toMatchObject({ kind: 'whip', endpoint: 'http://10.0.0.2:8889/cam/whip', token: 's3cret' });
    expect(target([], { FRAMEHOST_PUBLISH: 'whip+https://lk.example/w', FRAMEHOST_PUBLISH_TOKEN: 'abc=' })).toMatchObject({ kind: 'whip', endpoint: 'https://lk.example/w', token: 'abc=' });
  });

  it('refuses a WHIP URL with credentials or no host, a token that is no bearer token, a token without WHIP', () => {
    for (const bad of ['whip+http://u:p@h/w', 'whip+ftp://h/w', 'whip+http:///w']) expect(typeof parseWhipTarget(bad, null), bad).toBe('string');
    for (const token of ['two words', 'a"b', 'x'.repeat(4097)]) expect(typeof parseWhipTarget('whip+http://h/w', token), token.slice(0, 12)).toBe('string');
    expect(() => parse(['--publish', 'janus://127.0.0.1:8088/5', '--publish-token', 't'])).toThrow(/--publish-token is for a WHIP endpoint/);
    expect(() => parse(['--publish-token', 't'])).toThrow(/--publish-token needs --publish/);
    expect(() => parse(['--publish', 'whip://h/w'])).toThrow(/whip\+http:\/\//);
    expect(() => parse(['--webrtc-sender', 'wrtc', '--publish', 'whip+http://h/w'])).toThrow(/--webrtc-sender wrtc/);
  });
});
