/**
 * The node server's chart page (`GET /chart`): the runtime's chart (and on a fleet node the
 * node's) drawn from the machines' own definitions by the same code as the gateway's `/charts`
 * (src/charts/), with the active states lit live and the last events listed from
 * `/chart/events` (chart-sse.ts). No library, no internet; everything from the server is put in
 * the page as text. A `?token=SECRET` in the page's address is passed on to the stream.
 */
import { CHART_CSS, CHART_LIGHT_SCRIPT } from '../../charts/style.ts';
import { chartGraph, type LiveChart } from '../../machines/chart-graph.ts';
import { CHART_EVENTS_KEPT } from './chart-sse.ts';

const TITLES: Readonly<Record<string, string>> = { framehost: 'Runtime chart', node: 'Fleet node chart', publisher: 'SFU publisher chart (--publish)' };

/**
 * The page, drawn on its first request and kept: elkjs is loaded then, not at start-up (its
 * module alone takes ~0.3 s to load here; the first page took 1.2-2.0 s in all, later ones 2-33 ms).
 * Drawn again when a chart has joined since (the publisher's starts with the media room).
 */
export class ChartPage {
  private page: Promise<string> | null = null;
  private drawnCount = 0;

  constructor(private readonly current: () => readonly LiveChart[]) {}

  html(): Promise<string> {
    const charts = [...this.current()];
    if (charts.length !== this.drawnCount) this.page = null;
    this.drawnCount = charts.length;
    const page = (this.page ??= import('../../charts/drawing.ts')
      .then(({ drawChart }) => Promise.all(charts.map((c) => drawChart(chartGraph(c.machine)))))
      .then((svgs) => chartPageHtml(charts.map((c, i) => ({ id: c.machine.id, svg: svgs[i]! })))));
    page.catch(() => {
      if (this.page === page) this.page = null; // draw again on the next request rather than keep a failure
    });
    return page;
  }
}

function chartPageHtml(drawn: readonly { id: string; svg: string }[]): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>framehost: charts</title>
<style>
  body { font: 13px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
  h1 { font-size: 1.3rem; margin: 0 0 .5rem; } h2 { font-size: 1rem; margin: 1.2rem 0 .3rem; }
  #status.down { color: #b00020; } .muted { color: #777; }
  #events td { padding: .1rem .6rem; font-variant-numeric: tabular-nums; }
${CHART_CSS}
</style>
</head>
<body>
<h1>framehost: charts</h1>
<p><a href="./">demo page</a> · <span id="status" class="muted">connecting…</span></p>
${drawn.map((d) => `<h2>${TITLES[d.id] ?? d.id} <span class="muted" data-active-of="${d.id}"></span></h2>\n${d.svg}`).join('\n')}
<h2>Last events</h2>
<table id="events"><thead><tr><th>when</th><th>chart</th><th>event</th></tr></thead><tbody></tbody></table>
<script>
  const $ = (id) => document.getElementById(id);
  const KEPT = ${CHART_EVENTS_KEPT};
${CHART_LIGHT_SCRIPT}
  const view = { charts: {}, events: [] };
  window.chartView = view;
  // The deepest active states of a chart, as a short line beside its title.
  const leaves = (ids) => ids.filter((id) => !ids.some((o) => o.startsWith(id + '.'))).map((id) => id.split('.').slice(1).join('.'));
  function render() {
    for (const [chart, ids] of Object.entries(view.charts)) {
      light(chart, new Set(ids));
      const line = document.querySelector('[data-active-of="' + chart + '"]');
      if (line) line.textContent = leaves(ids).join(' · ');
    }
    $('events').tBodies[0].replaceChildren(...view.events.slice().reverse().map((e) => {
      const tr = document.createElement('tr');
      tr.dataset.type = e.type;
      for (const t of [new Date(e.t).toISOString().slice(11, 23), e.chart, e.type]) { const td = document.createElement('td'); td.textContent = t; tr.append(td); }
      return tr;
    }));
  }
  const token = new URLSearchParams(location.search).get('token');
  const source = new EventSource('chart/events' + (token ? '?token=' + encodeURIComponent(token) : ''));
  source.addEventListener('hello', (e) => {
    const v = JSON.parse(e.data);
    view.charts = v.charts;
    view.events = v.events;
    $('status').textContent = 'live';
    $('status').className = 'muted';
    render();
  });
  source.addEventListener('chart', (e) => {
    const v = JSON.parse(e.data);
    view.charts = v.charts;
    view.events = view.events.concat(v.events).slice(-KEPT);
    $('status').textContent = 'live · updated ' + new Date(v.t).toISOString().slice(11, 23) + (v.skipped ? ' (' + v.skipped + ' events not listed)' : '');
    render();
  });
  source.onerror = () => { $('status').textContent = 'reconnecting to the server…'; $('status').className = 'down'; };
</script>
</body>
</html>
`;
}
