/** Start an HTTP server listening and return its URL (port 0 picks a free port). */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export async function listenOn(http: Server, host: string, port: number): Promise<{ url: string; port: number }> {
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const actual = (http.address() as AddressInfo).port;
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${actual}`, port: actual };
}
