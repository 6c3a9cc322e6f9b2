/** `--publish` / FRAMEHOST_PUBLISH: the janus:// URL form, and the rule that it needs the room sender. */
import { describe, expect, it } from 'vitest';
import { parseCommandLine, UsageError } from '../src/cli/args.ts';
import { parseMediaOptions } from '../src/cli/media-options.ts';
import { parseJanusTarget } from '../src/media/janus/target.ts';

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseMediaOptions(parseCommandLine('serve', argv, env).values, env);

describe('--publish', () => {
  it('janus://HOST:PORT/ROOM is the REST API at /janus; a base path and TLS by scheme; display by query', () => {
    expect(parseJanusTarget('janus://127.0.0.1:8088/1234')).toEqual({ endpoint: 'http://127.0.0.1:8088/janus', room: 1234, display: 'framehost', label: 'janus://127.0.0.1:8088/1234' });
    expect(parseJanusTarget('janus+https://sfu.example/api/v1/7?display=node-a')).toEqual({ endpoint: 'https://sfu.example/api/v1', room: 7, display: 'node-a', label: 'janus+https://sfu.example/api/v1/7' });
  });

  it('refuses other schemes, credentials, a missing or bad room id, an empty display', () => {
    for (const bad of ['http://127.0.0.1:8088/1', 'whip://x/1', 'janus://u:p@h/1', 'janus://h:8088/', 'janus://h/abc', 'janus://h/0', 'janus://h/1?display=', 'not a url']) {
      expect(typeof parseJanusTarget(bad), bad).toBe('string');
    }
  });

  it('from the flag or FRAMEHOST_PUBLISH, with --webrtc-sender room', () => {
    expect(parse(['--webrtc-sender', 'room', '--publish', 'janus://127.0.0.1:8088/5']).webrtc?.publish?.room).toBe(5);
    expect(parse([], { FRAMEHOST_WEBRTC_SENDER: 'room', FRAMEHOST_PUBLISH: 'janus://10.0.0.2:8088/6' }).webrtc?.publish?.endpoint).toBe('http://10.0.0.2:8088/janus');
    expect(parse(['--webrtc-sender', 'room']).webrtc?.publish).toBeUndefined();
  });

  it('is a usage error with the wrtc sender (wrtc and node-datachannel do not share a process) or with a bad URL', () => {
    expect(parse(['--publish', 'janus://127.0.0.1:8088/5']).webrtc?.publish?.room).toBe(5); // the room is the default sender
    expect(() => parse(['--webrtc-sender', 'wrtc', '--publish', 'janus://127.0.0.1:8088/5'])).toThrow(UsageError);
    expect(() => parse(['--webrtc-sender', 'wrtc', '--publish', 'janus://127.0.0.1:8088/5'])).toThrow(/--webrtc-sender wrtc/);
    expect(() => parse(['--webrtc-sender', 'room', '--publish', 'rtmp://x/1'])).toThrow(/janus:\/\//);
  });
});
