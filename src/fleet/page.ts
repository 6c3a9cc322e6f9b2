/**
 * The gateway's live fleet page (`GET /`): the nodes with their state (gone ones with when and
 * why), each one's ride and lease age; this replica's rides with their phase, position and wait;
 * the counts; and the last events. It reads `GET /fleet/events` (server-sent events: a fleet view
 * on every change and at least twice a second), so it needs no library and no internet.
 * Everything from the server is put in the page as text, never as HTML.
 */
import { CHART_CSS, CHART_LIGHT_SCRIPT } from '../charts/style.ts';

/** One ride as the page shows it. */
export interface FleetViewRide {
  readonly jobId: string;
  readonly phase: string;
  readonly node: string | null;
  readonly attempt: number;
  readonly position: number | null;
  /** Since the request, or since the requeue while in line again. */
  readonly waitingMs: number;
  readonly requeues: number;
  /** The ride chart's active state ids. */
  readonly states: readonly string[];
}

export interface FleetView {
  readonly t: number;
  readonly redis: { readonly state: string; readonly reason?: string };
  readonly queue: { readonly waiting: number; readonly active: number } | null;
  readonly nodes: readonly { id: string; url: string; state: string; ride: string | null; leaseAgeMs: number | null; ageMs: number; sessions: number; fences: number; refusedCompletions: number; chart: readonly string[]; runtimeChart: readonly string[] }[];
  readonly gone: readonly { id: string; url: string; lastState: string; lastSeen: number; goneAt: number; why: string }[];
  readonly rides: readonly FleetViewRide[];
  readonly counts: { readonly assignments: number; readonly reassignments: number; readonly requeues: number; readonly fences: number; readonly refusedCompletions: number };
  readonly history: readonly { readonly t: number; readonly kind: string; readonly jobId: string; readonly text: string }[];
}

export const FLEET_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>framehost fleet</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
  h1 { font-size: 1.3rem; margin: 0 0 .5rem; }
  h2 { font-size: 1rem; margin: 1.2rem 0 .3rem; }
  table { border-collapse: collapse; min-width: 40rem; }
  th, td { text-align: left; padding: .2rem .6rem; border-bottom: 1px solid #ddd; font-variant-numeric: tabular-nums; }
  .state-free { color: #176317; } .state-busy, .state-riding { color: #1f4e9c; } .state-assigned { color: #8a6100; }
  .state-draining { color: #6b3fa0; } .state-gone, .state-overdue { color: #b00020; font-weight: 600; }
  #status.down { color: #b00020; } .muted { color: #777; }
</style>
</head>
<body>
<h1>framehost fleet</h1>
<p><a href="charts">charts</a></p>
<p id="status" class="muted">connecting…</p>
<p id="counts"></p>
<h2>Nodes</h2>
<table><thead><tr><th>node</th><th>state</th><th>ride</th><th>lease age</th><th>sessions</th><th>fences</th><th>refused completions</th><th>seen</th></tr></thead><tbody id="nodes"></tbody></table>
<h2>Gone</h2>
<table><thead><tr><th>node</th><th>gone</th><th>last state</th><th>why</th></tr></thead><tbody id="gone"></tbody></table>
<h2>Rides (this gateway)</h2>
<table><thead><tr><th>ride</th><th>phase</th><th>node</th><th>attempt</th><th>position</th><th>waiting</th><th>requeues</th></tr></thead><tbody id="rides"></tbody></table>
<h2>Last events</h2>
<table><thead><tr><th>when</th><th>event</th><th>ride</th><th></th></tr></thead><tbody id="history"></tbody></table>
<script>
  const $ = (id) => document.getElementById(id);
  const ago = (ms) => (ms < 1000 ? ms + ' ms' : (ms / 1000).toFixed(1) + ' s');
  const time = (t) => new Date(t).toISOString().slice(11, 23);
  function rows(tbody, items, cells, key) {
    tbody.replaceChildren(...items.map((item) => {
      const tr = document.createElement('tr');
      if (key) for (const [k, v] of Object.entries(key(item))) tr.dataset[k] = v;
      for (const [text, cls] of cells(item)) {
        const td = document.createElement('td');
        td.textContent = text;
        if (cls) td.className = cls;
        tr.append(td);
      }
      return tr;
    }));
  }
  function render(v) {
    window.fleetView = v;
    const up = v.redis.state === 'up';
    $('status').textContent = up ? 'live · updated ' + time(v.t) : 'Redis: ' + v.redis.state + (v.redis.reason ? ' (' + v.redis.reason + ')' : '');
    $('status').className = up ? 'muted' : 'down';
    const c = v.counts;
    $('counts').textContent = (v.queue ? v.queue.waiting + ' waiting, ' + v.queue.active + ' held · ' : '') + c.assignments + ' assignments, ' + c.requeues + ' requeues, ' + c.fences + ' fences, ' + c.refusedCompletions + ' refused completions';
    rows($('nodes'), v.nodes, (n) => [[n.id], [n.state, 'state-' + n.state], [n.ride ? n.ride.slice(0, 8) : '—'], [n.leaseAgeMs === null ? '—' : ago(n.leaseAgeMs)], [String(n.sessions)], [String(n.fences)], [String(n.refusedCompletions)], [ago(n.ageMs) + ' ago']], (n) => ({ node: n.id, state: n.state }));
    rows($('gone'), v.gone, (g) => [[g.id], [time(g.goneAt) + ' (' + ago(v.t - g.goneAt) + ' ago)', 'state-gone'], [g.lastState], [g.why]], (g) => ({ node: g.id, state: 'gone' }));
    rows($('rides'), v.rides, (r) => [[r.jobId.slice(0, 8)], [r.phase, 'state-' + r.phase], [r.node || '—'], [String(r.attempt)], [r.position === null ? '—' : String(r.position)], [ago(r.waitingMs)], [String(r.requeues)]], (r) => ({ ride: r.jobId, phase: r.phase }));
    rows($('history'), v.history, (h) => [[time(h.t)], [h.kind], [h.jobId.slice(0, 8)], [h.text]], (h) => ({ kind: h.kind }));
  }
  const source = new EventSource('fleet/events');
  source.onmessage = (e) => render(JSON.parse(e.data));
  source.onerror = () => { $('status').textContent = 'reconnecting to the gateway…'; $('status').className = 'down'; };
</script>
</body>
</html>
`;

/**
 * The charts page (`GET /charts`): the node's and a ride's statecharts drawn from the machines'
 * own definitions (laid out by ELK at the gateway), with the active states of the node and the
 * ride chosen in the lists highlighted live from the same event feed, and the last events.
 */
export function chartsPageHtml(runtimeSvg: string, nodeSvg: string, rideSvg: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>framehost fleet: charts</title>
<style>
  body { font: 13px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
  h1 { font-size: 1.3rem; margin: 0 0 .5rem; } h2 { font-size: 1rem; margin: 1.2rem 0 .3rem; }
${CHART_CSS}  #events td { padding: .1rem .6rem; }
</style>
</head>
<body>
<h1>framehost fleet: charts</h1>
<p><a href="./">fleet</a> · node <select id="node-pick"></select> · ride <select id="ride-pick"></select> <span id="status"></span></p>
<h2>Runtime chart (the chosen node's runtime, as its last registry record has it)</h2>
${runtimeSvg}
<h2>Node chart</h2>
${nodeSvg}
<h2>Ride chart</h2>
${rideSvg}
<h2>Last events</h2>
<table id="events"></table>
<script>
  const $ = (id) => document.getElementById(id);
  function pick(select, items, label) {
    const keep = select.value;
    select.replaceChildren(...items.map((it) => { const o = document.createElement('option'); o.value = it.id; o.textContent = label(it); return o; }));
    if (items.some((it) => it.id === keep)) select.value = keep;
  }
${CHART_LIGHT_SCRIPT}  function render(v) {
    window.fleetView = v;
    pick($('node-pick'), v.nodes.map((n) => ({ id: n.id, n })), (x) => x.id + ' (' + x.n.state + ')');
    pick($('ride-pick'), v.rides.map((r) => ({ id: r.jobId, r })), (x) => x.id.slice(0, 8) + ' (' + x.r.phase + ')');
    const node = v.nodes.find((n) => n.id === $('node-pick').value);
    const ride = v.rides.find((r) => r.jobId === $('ride-pick').value);
    light('node', new Set(node ? node.chart : []));
    light('framehost', new Set(node ? node.runtimeChart : []));
    light('ride', new Set(ride ? ride.states : []));
    $('status').textContent = 'updated ' + new Date(v.t).toISOString().slice(11, 23);
    $('events').replaceChildren(...v.history.slice(0, 15).map((h) => {
      const tr = document.createElement('tr');
      for (const t of [new Date(h.t).toISOString().slice(11, 23), h.kind, h.jobId.slice(0, 8), h.text]) { const td = document.createElement('td'); td.textContent = t; tr.append(td); }
      return tr;
    }));
  }
  for (const id of ['node-pick', 'ride-pick']) $(id).addEventListener('change', () => window.fleetView && render(window.fleetView));
  new EventSource('fleet/events').onmessage = (e) => render(JSON.parse(e.data));
</script>
</body>
</html>
`;
}
