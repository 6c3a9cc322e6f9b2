/**
 * Who this page is in the session and what it may do, made visible: the role (owner,
 * spectator, nobody), the buttons enabled only where the server would accept them (with the
 * reason on hover), and the notices over the picture: reconnecting, the owner away with the
 * orphan countdown, someone else playing (Watch shows it). The notices lie over the picture,
 * so their coming and going never moves anything.
 */
import type { Phase } from '../machines/phase.ts';
import type { Right } from '../auth/principal.ts';
import type { SessionView } from '../transport/socket/events.ts';
import { $, allow } from './dom.ts';

export type Role = 'owner' | 'spectator' | 'nobody';

/** What the page knows of itself and the session; `render` shows it. */
export class Presence {
  phase: Phase = 'loading';
  /** This page controls the session (it started it, or resumed with its token). */
  owner = false;
  /** This page receives the stream. */
  viewing = false;
  connected = true;
  session: SessionView | null = null;
  /** What this page's credential allows (a spectator's access token: watch only). */
  rights: readonly Right[] = ['play', 'watch'];
  /** When the orphan timeout stops the session, performance.now() ms (null: the owner is here). */
  private orphanAt: number | null = null;

  get role(): Role {
    return this.owner ? 'owner' : this.viewing ? 'spectator' : 'nobody';
  }

  get running(): boolean {
    return this.phase === 'starting' || this.phase === 'running';
  }

  /** The server's view of the session (capabilities ack, session:update). */
  update(view: SessionView | null): void {
    this.session = view;
    this.orphanAt = view?.orphanMsLeft != null ? performance.now() + view.orphanMsLeft : null;
  }

  /** Why a command would be refused now, or null when this page may send them. */
  commandRefusal(): string | null {
    if (!this.connected) return 'Reconnecting…';
    if (!this.running) return 'No session runs: press Start';
    if (!this.owner) return 'Only the session’s owner may send commands (you are not)';
    return null;
  }

  render(): void {
    $('role').textContent = this.role;
    $('state').textContent = this.phase;
    const offline = this.connected ? null : 'Reconnecting…';
    const player = this.rights.includes('play') ? null : 'Your access token lets you watch, not play';
    allow($<HTMLButtonElement>('start'), offline ?? player ?? (this.running || this.phase === 'stopping' ? 'A session runs: Watch it, or wait for it to end' : this.phase !== 'idle' ? `The model is ${this.phase}` : null), 'Start a session: you control it');
    allow($<HTMLButtonElement>('stop'), offline ?? (!this.running ? 'No session runs' : !this.owner ? 'Only the session’s owner may stop it' : null), 'Stop your session');
    allow($<HTMLButtonElement>('watch'), offline ?? (!this.running ? 'No session runs to watch' : this.viewing ? 'You are watching' : null), 'Receive the stream without controlling the session');
    allow($<HTMLSelectElement>('encoding'), this.viewing ? 'The stream in use keeps its encoding: choose before Start or Watch' : null, 'How frames travel: WebRTC video, or frames over Socket.IO');
    $('notice').textContent = this.notice() ?? '';
    $('notice').hidden = $('notice').textContent === '';
  }

  /** The one notice over the picture that matters most now, if any. */
  private notice(): string | null {
    if (!this.connected) return 'Reconnecting…';
    if (this.running && this.session?.ownerAway) {
      const left = this.orphanAt === null ? null : Math.max(0, Math.ceil((this.orphanAt - performance.now()) / 1000));
      return `The owner is away: the session stops${left === null ? ' soon' : ` in ${left} s`} unless they come back.`;
    }
    if (this.running && !this.owner && !this.viewing) return 'Someone else is playing. Watch shows it.';
    return null;
  }
}

/** The tab's ride: which session, its token if this tab owns it, whether it was watching it. */
export interface TabRide {
  readonly sessionId: string | null;
  readonly token: string | null;
  readonly watching: boolean;
}

/**
 * What this tab needs to take its ride back after a reload: the session token (per tab,
 * sessionStorage: another tab is another player) and whether it was watching, with which encoding.
 */
export class TabMemory {
  private static readonly KEY = 'framehost.page';

  static read(): TabRide {
    try {
      const raw = JSON.parse(sessionStorage.getItem(TabMemory.KEY) ?? '{}') as Record<string, unknown>;
      return { sessionId: typeof raw.sessionId === 'string' ? raw.sessionId : null, token: typeof raw.token === 'string' ? raw.token : null, watching: raw.watching === true };
    } catch {
      return { sessionId: null, token: null, watching: false }; // storage off or garbled: nothing to resume
    }
  }

  static write(state: TabRide): void {
    try {
      sessionStorage.setItem(TabMemory.KEY, JSON.stringify(state));
    } catch {
      // storage off (private mode): the page works, only a reload loses the ride
    }
  }
}

/**
 * The player's access credential (an access token minted by the operator's backend, or the LAN's
 * shared secret), handed to the page in the URL's fragment: `https://host/#token=…`. A fragment
 * never reaches a server, a proxy's log or a Referer header. The page moves it into this tab's
 * sessionStorage and out of the address bar, so a reload keeps it and a copied link does not.
 */
export class TabCredential {
  private static readonly KEY = 'framehost.credential';

  static take(): string | undefined {
    const fromUrl = new URLSearchParams(location.hash.slice(1)).get('token');
    try {
      if (fromUrl) {
        sessionStorage.setItem(TabCredential.KEY, fromUrl);
        history.replaceState(null, '', location.pathname + location.search);
      }
      return fromUrl ?? sessionStorage.getItem(TabCredential.KEY) ?? undefined;
    } catch {
      return fromUrl ?? undefined; // storage off: this load works, a reload needs the link again
    }
  }
}
