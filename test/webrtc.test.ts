/** The WebRTC suite (test/webrtc-suite.ts) on the wrtc sender: libwebrtc, an encoder per peer. */
import { webrtcSuite } from './webrtc-suite.ts';

webrtcSuite('wrtc');
