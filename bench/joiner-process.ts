/**
 * WebRTC viewers that join and leave one at a time, in their own process (as real viewers
 * are), for the joins section of the bench (bench/webrtc-joins.ts): each `join` connects a
 * framehost client, negotiates a libwebrtc peer (@roamhq/wrtc), attaches it, waits for its
 * first decoded frame and leaves: every other one closes its peer first (`webrtc:close`), the
 * rest just go away, as in test/webrtc.test.ts's soak.
 */
import { FramehostClient } from '../src/client/client.ts';
import { connectViewer } from '../test/helpers/webrtc.ts';

export type JoinerRequest = { type: 'join'; url: string; closePeer: boolean } | { type: 'close' };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `offerToFrameMs`: from making the offer to the first decoded frame (bench/room.ts's late joiner). */
async function join(url: string, closePeer: boolean): Promise<{ ok: true; offerToFrameMs: number }> {
  const client = await FramehostClient.connect(url, { reconnection: false });
  let offerToFrameMs = 0;
  try {
    const offeredAt = performance.now();
    const viewer = await connectViewer(client);
    await client.attach({ encoding: 'webrtc' });
    for (let waited = 0; viewer.frames < 1; waited += 1) {
      if (waited > 20_000) throw new Error('no frame within 20 s');
      await sleep(1);
    }
    offerToFrameMs = performance.now() - offeredAt;
    if (closePeer) await client.request('webrtc:close', { peerId: viewer.peerId });
    viewer.close();
  } finally {
    client.close();
  }
  return { ok: true, offerToFrameMs };
}

process.on('message', (m: JoinerRequest & { id: number }) => {
  if (m.type === 'close') {
    process.send!({ id: m.id, result: { ok: true } });
    // process.exit: libwebrtc's teardown at a natural exit crashes (wrtc 0.10, Linux).
    setTimeout(() => process.exit(0), 10);
    return;
  }
  join(m.url, m.closePeer).then(
    (result) => process.send!({ id: m.id, result }),
    (err: Error) => process.send!({ id: m.id, error: err.message }),
  );
});
process.send!({ ready: true });
