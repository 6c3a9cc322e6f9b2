/**
 * What every page showing drawn charts (src/charts/drawing.ts) shares: the charts' CSS, and the
 * page-side function that highlights a chart's active states by id. One copy, so the node
 * server's `/chart` and the gateway's `/charts` draw and light states the same way.
 */

export const CHART_CSS = `
  svg.chart { display: block; max-width: 100%; height: auto; }
  .state rect { fill: #fff; stroke: #999; stroke-width: 1; }
  .state.compound > rect { fill: #f6f7f9; }
  .state.active > rect { fill: #dcebff; stroke: #1f4e9c; stroke-width: 2.5; }
  .state.compound.active > rect { fill: #eef5ff; }
  .state text { font: 12px system-ui, sans-serif; fill: #222; }
  .edge { fill: none; stroke: #888; stroke-width: 1; }
  .edge-label { font: 10px system-ui, sans-serif; fill: #666; }
`;

/** Page script: `light(chartId, activeIds)` marks the states of that drawn chart whose ids are in the set. */
export const CHART_LIGHT_SCRIPT = `
  function light(chart, active) {
    for (const g of document.querySelectorAll('svg[data-chart="' + chart + '"] [data-state]')) g.classList.toggle('active', active.has(g.dataset.state));
  }
`;
