/**
 * framehost as a library: the runtime, the chart, the model API and the server, for services
 * that embed them. `framehost/client` is the Socket.IO client alone (browser-safe).
 */
export { createRuntime, LOCAL_OWNER } from './runtime/runtime.ts';
export type { Runtime, RuntimeOptions, RuntimeFrame, RuntimeEvents, RuntimeStatus, SessionStatus } from './runtime/runtime.ts';
export { runtimeMachine } from './machines/runtime.machine.ts';
export type { RuntimeMachine, RuntimeMachineInput } from './machines/runtime.machine.ts';
export { phaseOf, PHASES, isServing } from './machines/phase.ts';
export type { Phase } from './machines/phase.ts';
export { DEFAULT_LIMITS, END_REASONS } from './machines/types.ts';
export type { EndReason, Limits, ModelInfo, RuntimeEvent, RuntimeEmitted, SessionEnd } from './machines/types.ts';
export { defineModel } from './model/api.ts';
export type {
  CommandContext,
  CommandDef,
  Frame,
  InputFrame,
  InputReader,
  InputTrackSpec,
  JsonValue,
  LoadContext,
  ModelDefinition,
  PixelFormat,
  SessionContext,
  SessionEndContext,
} from './model/api.ts';
export { t } from './model/schema.ts';
export type { ArgsOf, BooleanField, EnumField, Field, Fields, NumberField, StringField } from './model/schema.ts';
export { DEMO_MODEL_URL, VIDEO_FILTER_MODEL_URL } from './model/load.ts';
export type { Capabilities } from './model/capabilities.ts';
export { tensorToFrame } from './gpu/frames.ts';
export { GraphBuilder } from './models/graph-builder.ts';
export type { DTypeName } from './models/graph-builder.ts';
export type { CreateSessionOptions, OnnxSession, TensorInfo } from './gpu/session.ts';
export { listen } from './transport/server.ts';
export type { FramehostHttpServer } from './transport/server.ts';
export { DEFAULT_TRANSPORT } from './transport/options.ts';
export type { TransportOptions } from './transport/options.ts';
export type { ClientToServerEvents, ServerToClientEvents, FrameMeta } from './transport/socket/events.ts';
export { ERRORS, FramehostError, errorValue } from './errors.ts';
// Access tokens (src/auth): minting for an operator's backend, and the one check HTTP handlers call.
export { createToken, parseDuration, TokenVerifier, DEFAULT_TOKEN_POLICY, MAX_TOKEN_LENGTH } from './auth/tokens.ts';
export type { CreateTokenOptions, TokenClaims, TokenPolicy } from './auth/tokens.ts';
export { loadTokenKeys, loadSigningKey, TokenKeyError, MIN_SECRET_LENGTH } from './auth/keys.ts';
export type { SigningKey, TokenAlgorithm, TokenKey, TokenKeySet } from './auth/keys.ts';
export { Access, authorizeRequest, credentialOf, permits, ROLE_RIGHTS, ROLES } from './auth/access.ts';
export type { Principal, Right, Role } from './auth/access.ts';
export type { ErrorCode, ErrorValue, Result } from './errors.ts';
