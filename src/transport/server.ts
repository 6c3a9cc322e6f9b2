/**
 * One HTTP server carrying Socket.IO and the HTTP endpoints, over a runtime.
 * `listen()` resolves with the URL (port 0 picks a free port, as tests do).
 */
import { createServer, type Server as HttpServer } from 'node:http';
import { Server } from 'socket.io';
import type { Runtime } from '../runtime/runtime.ts';
import { createMetrics, type Metrics } from './http/metrics.ts';
import { createHttpHandler, createMetricsHandler } from './http/routes.ts';
import { Access } from '../auth/access.ts';
import { DEFAULT_TRANSPORT, type TransportOptions } from './options.ts';
import { attachProtocol, type FramehostServer } from './socket/protocol.ts';
import { originCheck } from './socket/handshake.ts';
import { listenOn } from '../util/listen.ts';
import { EventStream } from './http/events-sse.ts';
import { ChartStream } from './http/chart-sse.ts';
import { ChartPage } from './http/chart-page.ts';
import { runtimeMachine } from '../machines/runtime.machine.ts';
import { WhepEndpoint } from './webrtc/whep.ts';
import type { Media } from './webrtc/signalling.ts';
import { VideoRecorder, videoRecordProblem, type VideoRecordOptions } from '../media/video-recorder.ts';
import { FramehostError } from '../errors.ts';
import type { Logger } from 'pino';
import { DEFAULT_WEBRTC } from './webrtc/options.ts';

export interface FramehostHttpServer {
  readonly url: string;
  readonly port: number;
  readonly http: HttpServer;
  readonly io: FramehostServer;
  readonly metrics: Metrics;
  /** The `/metrics`-only listener's URL, when `metricsPort` is set. */
  readonly metricsUrl?: string;
  /** Close connections and the listener (the runtime is the caller's to shut down). */
  close(): Promise<void>;
}

/** The recorder on the server's media room (loaded now: a failure to load is the server's, at start). */
async function startVideoRecorder(options: VideoRecordOptions, media: Media, runtime: Runtime, log: Logger): Promise<VideoRecorder> {
  const room = await media.room();
  if (!('tap' in room)) throw FramehostError.from(room);
  return new VideoRecorder(options, room, runtime, log.child({ component: 'recording' }));
}

export async function listen(runtime: Runtime, overrides: Partial<TransportOptions> = {}): Promise<FramehostHttpServer> {
  const options: TransportOptions = { ...DEFAULT_TRANSPORT, ...overrides };
  const log = runtime.log.child({ component: 'transport' });
  const metrics = createMetrics(runtime);
  // One check for every door: the handshake, each request, /events, /chart/events, /metrics.
  const access = new Access({ ...(options.authToken ? { authToken: options.authToken } : {}), ...(options.tokens ? { verifier: options.tokens } : {}) });
  const events = new EventStream(runtime, { access }, log);
  // /chart: the runtime's chart, any the caller adds (a fleet node's), and the SFU publisher's once it starts.
  const chartStream = new ChartStream([{ machine: runtimeMachine, actor: runtime.actor }, ...(options.charts ?? [])], { access }, log);
  const whep = new WhepEndpoint({ access, log, corsOrigins: options.corsOrigins, maxSdpBytes: options.webrtc?.maxSdpBytes ?? DEFAULT_WEBRTC.maxSdpBytes, refused: (code) => counted.commandError(code) });
  const recordVideo = options.recordVideo;
  const problem = recordVideo ? videoRecordProblem(recordVideo) : null;
  if (problem) throw new FramehostError('bad_request', problem);
  // The recording reuses the room's encode; a wrtc server has no room (and must not load node-datachannel).
  if (recordVideo && (options.webrtc?.sender ?? DEFAULT_WEBRTC.sender) !== 'room') throw new FramehostError('bad_request', 'recordVideo needs the room sender (the default), not webrtc.sender: wrtc');
  const optional = { whep, ...(recordVideo ? { recordingsDir: recordVideo.dir } : {}) };
  const http = createServer(createHttpHandler(runtime, metrics, log, events, { page: new ChartPage(() => chartStream.charts()), stream: chartStream }, access, optional));
  const metricsHttp = options.metricsPort !== undefined ? createServer(createMetricsHandler(metrics, log)) : null;
  const largestInput = Math.max(0, ...Object.values(runtime.capabilities.inputs).map((i) => i.width * i.height * (i.format === 'rgba' ? 4 : 3)));
  const io: FramehostServer = new Server(http, {
    maxHttpBufferSize: Math.max(options.maxPayloadBytes, largestInput + 4096),
    // Frames barely compress and deflate caps delivery far below inference (MEASURED.md).
    perMessageDeflate: false,
    httpCompression: false,
    serveClient: false,
    cors: options.corsOrigins.length > 0 ? { origin: [...options.corsOrigins] } : undefined,
    allowRequest: originCheck(options.corsOrigins, log),
  });
  // Every refusal the protocol counts also reaches the /events readers.
  const counted: Metrics = { ...metrics, commandError: (code) => (metrics.commandError(code), events.refused(code)) };
  const protocol = attachProtocol(io, { runtime, options, log, metrics: counted, access });
  whep.bind(protocol);
  void protocol.media.publisherChart().then((chart) => chart && chartStream.add(chart));
  // Loaded before listening (a room that cannot load fails the start); undone by detach.
  const recorder = recordVideo ? startVideoRecorder(recordVideo, protocol.media, runtime, log) : null;

  /**
   * Everything above subscribes to the runtime or holds a timer: undone by close, or when
   * listening fails. Resolves when the media have let go (a Janus publication has left its room).
   */
  const detach = (): Promise<void> => {
    // Before the room closes with the protocol: the file is closed cleanly.
    void recorder?.then((r) => r.close(), () => undefined);
    const media = protocol.detach();
    metrics.detach();
    events.close(); // open event streams would keep the HTTP server from closing
    chartStream.close();
    return media;
  };
  let address: { url: string; port: number };
  let metricsUrl: string | undefined;
  try {
    await recorder;
    address = await listenOn(http, options.host, options.port);
    if (metricsHttp) metricsUrl = (await listenOn(metricsHttp, options.metricsHost ?? '127.0.0.1', options.metricsPort ?? 0)).url;
  } catch (err) {
    // A port in use must not leave the runtime with listeners of a server that never ran.
    void detach();
    io.close();
    metricsHttp?.close();
    throw err;
  }
  const { url, port } = address;
  log.info({ url }, `listening on ${url}`);
  return {
    url,
    port,
    http,
    io,
    metrics,
    ...(metricsUrl ? { metricsUrl } : {}),
    close: () =>
      new Promise<void>((resolve) => {
        const media = detach();
        metricsHttp?.closeAllConnections();
        metricsHttp?.close();
        io.close(() => void media.then(resolve, resolve)); // every socket, then the HTTP server, then the media
      }),
  };
}
