/**
 * Draws a chart (src/machines/chart-graph.ts) as SVG, laid out by ELK (elkjs, layered, with
 * compound states containing their children), so the charts can be seen offline: on the node
 * server's `/chart` and the gateway's `/charts`. Each state is a `<g data-state="<id>">`: a page
 * highlights the active ones by id (src/charts/style.ts).
 */
import elkModule, { type ElkExtendedEdge, type ElkNode } from 'elkjs/lib/elk.bundled.js';
import type { ChartGraph } from '../machines/chart-graph.ts';

// elkjs is CommonJS (`module.exports = ELK`): under NodeNext its types put the class at `.default`.
type ElkClass = typeof elkModule.default;
const ELK: ElkClass = ((elkModule as unknown as { default?: ElkClass }).default ?? elkModule) as ElkClass;

const CHAR_W = 7; // px per character at 12 px system-ui: enough for the labels' widths
const LEAF_H = 26;
const LABEL_H = 22;

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

interface Placed {
  readonly id: string;
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
  readonly leaf: boolean;
  readonly label: string;
  readonly kind: string;
}

export async function drawChart(graph: ChartGraph): Promise<string> {
  const elk = new ELK();
  const byParent = new Map<string | null, ChartGraph['states'][number][]>();
  for (const s of graph.states) byParent.set(s.parent, [...(byParent.get(s.parent) ?? []), s]);
  const build = (parent: string | null): ElkNode[] =>
    (byParent.get(parent) ?? []).map((s) => {
      const children = build(s.id);
      const label = s.key + (s.type === 'parallel' ? ' (parallel)' : '') + (s.type === 'final' ? ' (final)' : '');
      return children.length > 0
        ? { id: s.id, labels: [{ text: label }], children, layoutOptions: { 'elk.padding': `[top=${LABEL_H + 6},left=10,bottom=10,right=10]`, 'elk.direction': 'RIGHT' } }
        : { id: s.id, labels: [{ text: label }], width: Math.max(60, label.length * CHAR_W + 20), height: LEAF_H };
    });
  const edges: ElkExtendedEdge[] = graph.transitions.map((t) => ({ id: t.id, sources: [t.source], targets: [t.target], labels: [{ text: t.label, width: t.label.length * 6, height: 12 }] }));
  const laid: ElkNode = await elk.layout({
    id: graph.id,
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.layered.spacing.nodeNodeBetweenLayers': '40',
      'elk.spacing.nodeNode': '20',
      'elk.edgeLabels.inline': 'false',
    },
    children: build(null),
    edges,
  });

  // ELK gives positions relative to the parent (nodes) or to the edge's container: make them absolute.
  const placed: Placed[] = [];
  const origin = new Map<string, { x: number; y: number }>([[graph.id, { x: 0, y: 0 }]]);
  const kinds = new Map(graph.states.map((s) => [s.id, s.type]));
  const visit = (n: ElkNode, ox: number, oy: number): void => {
    for (const c of n.children ?? []) {
      const x = ox + (c.x ?? 0);
      const y = oy + (c.y ?? 0);
      origin.set(c.id, { x, y });
      placed.push({ id: c.id, x, y, w: c.width ?? 0, h: c.height ?? 0, leaf: !c.children?.length, label: c.labels?.[0]?.text ?? c.id, kind: kinds.get(c.id) ?? 'atomic' });
      visit(c, x, y);
    }
  };
  visit(laid, 0, 0);
  const edgeSvg: string[] = [];
  const collect = (n: ElkNode): void => {
    for (const e of (n.edges ?? []) as (ElkExtendedEdge & { container?: string })[]) {
      const o = origin.get(e.container ?? graph.id) ?? { x: 0, y: 0 };
      for (const sec of e.sections ?? []) {
        const pts = [sec.startPoint, ...(sec.bendPoints ?? []), sec.endPoint].map((p) => `${(o.x + p.x).toFixed(1)},${(o.y + p.y).toFixed(1)}`).join(' ');
        edgeSvg.push(`<polyline class="edge" points="${pts}" marker-end="url(#arrow)"/>`);
      }
      for (const l of e.labels ?? []) edgeSvg.push(`<text class="edge-label" x="${(o.x + (l.x ?? 0)).toFixed(1)}" y="${(o.y + (l.y ?? 0) + 10).toFixed(1)}">${esc(l.text ?? '')}</text>`);
    }
    for (const c of n.children ?? []) collect(c);
  };
  collect(laid);
  const stateSvg = placed.map(
    (p) =>
      `<g class="state ${p.leaf ? 'leaf' : 'compound'} kind-${p.kind}" data-state="${esc(p.id)}"><rect x="${p.x}" y="${p.y}" width="${p.w}" height="${p.h}" rx="6"/>` +
      `<text x="${p.x + (p.leaf ? p.w / 2 : 8)}" y="${p.y + (p.leaf ? LEAF_H / 2 + 4 : 15)}"${p.leaf ? ' text-anchor="middle"' : ''}>${esc(p.label)}</text></g>`,
  );
  const w = Math.ceil((laid.width ?? 0) + 4);
  const h = Math.ceil((laid.height ?? 0) + 4);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="${esc(graph.id)}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">` +
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#888"/></marker></defs>` +
    stateSvg.join('') +
    edgeSvg.join('') +
    `</svg>`
  );
}
