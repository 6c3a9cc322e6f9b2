/**
 * The WebRTC suite (test/webrtc-suite.ts) on the room sender: one encode for every viewer, sent
 * through node-datachannel. A file of its own: this process loads node-datachannel, the wrtc
 * sender's file loads libwebrtc, and the two were not cleared to share a process.
 */
import { webrtcSuite } from './webrtc-suite.ts';

webrtcSuite('room');
