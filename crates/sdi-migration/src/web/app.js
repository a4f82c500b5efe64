// sdi-migration web view: one stream (GET /api/v1/stream, server-sent events
// read with fetch so the Authorization header can go with it), rendered into
// plain tables. No framework, no build step.
'use strict';

const $ = (sel) => document.querySelector(sel);
const state = {
  meta: null,        // version, auto_migration, dry_run, threshold_pct
  jobs: new Map(),   // migration_id -> MigrationResponse
  plan: null,        // PlanView
  nodes: null,       // NodeSummary
  selected: null,    // migration_id shown in the details panel
  opener: null,      // the button that opened it (focus returns there)
  firstRender: false,
};
const TOKEN_KEY = 'sdi-migration-token';
const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ESC[c]);
const pct = (v) => (v == null ? '–' : `${v.toFixed(1)}%`);
const STATUS_MARK = { pending: '◷', running: '▶', completed: '✓', failed: '✗', cancelled: '⊘',
                      skipped: '↷' };
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }
function headers(extra) {
  const h = Object.assign({}, extra);
  if (token()) h.Authorization = `Bearer ${token()}`;
  return h;
}

function duration(job) {
  const d = job.details;
  let ms;
  if (d.duration != null) ms = d.duration / 1e6;
  else if (d.start_time && !TERMINAL.has(job.status)) ms = Date.now() - Date.parse(d.start_time);
  if (ms == null || Number.isNaN(ms)) return '–';
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function statusText(s) {
  return `<span class="s-${esc(s)}"><span aria-hidden="true">${STATUS_MARK[s] || ''} </span>${esc(s)}</span>`;
}

function progress(job) {
  const steps = job.details.steps || [];
  const done = steps.filter((s) => s.status !== 'running').length;
  const now = steps.find((s) => s.status === 'running');
  const last = steps[steps.length - 1];
  const tail = now ? `now: ${esc(now.name)}` : last ? `last: ${esc(last.name)} ${esc(last.status)}` : 'not started';
  return `${done} of ${steps.length} step${steps.length === 1 ? '' : 's'} done · ${tail}`;
}

function sortedJobs() {
  return [...state.jobs.values()].sort((a, b) =>
    (b.details.start_time || '').localeCompare(a.details.start_time || '') ||
    b.migration_id.localeCompare(a.migration_id));
}

// ---- rendering ---------------------------------------------------------

function meterCell(value, threshold) {
  const v = Math.max(0, Math.min(value, 100));
  const hot = value > threshold;
  return `<meter aria-hidden="true" min="0" max="100" low="${threshold * 0.8}" high="${threshold}" optimum="0" ` +
    `value="${v.toFixed(1)}"></meter><span class="num${hot ? ' hot' : ''}">${pct(value)}</span>`;
}

function renderNodes() {
  const s = state.nodes;
  if (!s) return;
  const t = s.threshold_pct;
  const parts = [`${s.total.toLocaleString()} nodes`,
    `${s.pressured.toLocaleString()} above ${t}% (${s.pressured_cpu} by CPU, ${s.pressured_memory} by memory)`,
    `basis: ${s.basis === 'usage' ? 'measured usage' : 'sum of pod requests'}`];
  if (s.matching !== s.total) parts.push(`${s.matching.toLocaleString()} match the filter`);
  parts.push(`showing ${s.nodes.length}`);
  $('#nodes-summary').textContent = parts.join(' · ');
  const max = Math.max(1, ...s.histogram.map((b) => Math.max(b.cpu, b.memory)));
  $('#histogram tbody').innerHTML = s.histogram.slice().reverse().map((b) => {
    const label = b.to_pct == null ? `${b.from_pct}% and above` : `${b.from_pct}–${b.to_pct}%`;
    const cell = (n) => `<meter aria-hidden="true" min="0" max="${max}" value="${n}"></meter>${n.toLocaleString()}`;
    return `<tr><th scope="row">${label}</th><td>${cell(b.cpu)}</td><td>${cell(b.memory)}</td></tr>`;
  }).join('');
  $('#nodes tbody').innerHTML = s.nodes.map((n) => {
    const flags = [];
    if (n.pressured) flags.push(`<span class="hot">▲ above ${t}%</span>`);
    if (!n.ready) flags.push('not ready');
    if (n.unschedulable) flags.push('cordoned');
    const use = n.cpu_usage_pct == null ? 'not measured' : `${pct(n.cpu_usage_pct)} / ${pct(n.mem_usage_pct)}`;
    const req = `${pct(n.cpu_requests_pct)} / ${pct(n.mem_requests_pct)}`;
    return `<tr data-node="${esc(n.name)}"><th scope="row">${esc(n.name)}</th>` +
      `<td>${meterCell(n.cpu_pct, t)}</td><td>${meterCell(n.mem_pct, t)}</td>` +
      `<td>${use}</td><td>${req}</td><td>${flags.join(', ') || 'ok'}</td></tr>`;
  }).join('') || '<tr><td colspan="6">No node matches.</td></tr>';
  document.querySelectorAll('#nodes .basis').forEach((e) => { e.textContent = `(${s.basis}, pressure)`; });
}

// Re-rendering a table must not take the keyboard focus away from its button.
function keepFocus(render) {
  const a = document.activeElement;
  const id = a && a.matches && a.matches('button.details') ? a.dataset.id : null;
  const table = id && a.closest('table');
  render();
  if (table) {
    const again = table.querySelector(`button.details[data-id="${CSS.escape(id)}"]`);
    if (again) again.focus();
  }
}

function renderJobs() { keepFocus(renderJobTable); renderDetail(); }

function renderJobTable() {
  const jobs = sortedJobs();
  const active = jobs.filter((j) => !TERMINAL.has(j.status)).length;
  $('#migrations-summary').textContent = jobs.length
    ? `${jobs.length} migration${jobs.length === 1 ? '' : 's'} shown, ${active} in progress.`
    : 'No migration yet.';
  $('#migrations tbody').innerHTML = jobs.map((j) => {
    const d = j.details;
    const landed = d.new_node_name && d.new_node_name !== d.target_node ? ` (landed on ${esc(d.new_node_name)})` : '';
    const sel = j.migration_id === state.selected;
    return `<tr data-job="${esc(j.migration_id)}"${sel ? ' class="selected"' : ''}>` +
      `<td><button type="button" class="link details" data-id="${esc(j.migration_id)}" ` +
      `aria-expanded="${sel}" aria-controls="detail">${esc(j.migration_id)}</button></td>` +
      `<td>${esc(d.pod_namespace)}/${esc(d.pod_name)}</td>` +
      `<td>${esc(d.source_node)} → ${esc(d.target_node)}${landed}</td>` +
      `<td class="status">${statusText(j.status)}</td>` +
      `<td class="progress">${progress(j)}</td>` +
      `<td>${esc(d.strategy || '–')}</td><td>${esc(d.origin || '–')}</td>` +
      `<td>${duration(j)}</td><td>${esc(d.error_category || '–')}</td></tr>`;
  }).join('');
}

function usage(u) {
  return u ? `${u.cpu_usage.toFixed(3)} cores, ${(u.memory_usage / 1048576).toFixed(0)} MiB at ${esc(u.timestamp)}` : '–';
}

function renderDetail() {
  const panel = $('#detail');
  const job = state.selected && state.jobs.get(state.selected);
  if (!job) { panel.hidden = true; return; }
  const d = job.details;
  $('#detail-h').textContent = `Migration ${job.migration_id}: ${job.status}`;
  const rows = [
    ['Message', esc(job.message)],
    ['Pod', `${esc(d.pod_namespace)}/${esc(d.pod_name)}`],
    ['From → to', `${esc(d.source_node)} → ${esc(d.target_node)}`],
    ['Landed on', esc(d.new_node_name || '–')],
    ['New pod', esc(d.new_pod_name || '–')],
    ['Strategy', esc(d.strategy || '–')],
    ['Origin', esc(d.origin || '–')],
    ['Started', esc(d.start_time || '–')],
    ['Ended', esc(d.end_time || '–')],
    ['Duration', duration(job)],
    ['Error', esc(d.error || '–')],
    ['Error category', esc(d.error_category || '–')],
    ['Usage before', usage(d.original_resources)],
    ['Usage after', usage(d.optimized_resources)],
    ['Checkpoint', esc(d.checkpoint_path || '–')],
    ['Checkpoint volume', esc(d.pv_claim_name || '–')],
  ];
  const steps = (d.steps || []).map((s) =>
    `<li data-step="${esc(s.name)}"><strong>${esc(s.name)}</strong> — ${statusText(s.status)}` +
    ` <span class="muted">${esc(s.start_time)}${s.end_time ? ` → ${esc(s.end_time)}` : ''}</span>` +
    `${s.message ? `<br>${esc(s.message)}` : ''}</li>`).join('');
  const containers = (d.container_states || []).map((c) => `<li>${esc(JSON.stringify(c))}</li>`).join('');
  $('#detail-body').innerHTML =
    `<dl>${rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>` +
    `<h4>Steps</h4>${steps ? `<ol id="steps">${steps}</ol>` : '<p>No step yet.</p>'}` +
    (containers ? `<h4>Containers</h4><ul>${containers}</ul>` : '');
  $('#detail-cancel').hidden = TERMINAL.has(job.status);
  panel.hidden = false;
}

function decisionRow(d) {
  const id = d.migration_id
    ? `<button type="button" class="link details" data-id="${esc(d.migration_id)}">${esc(d.migration_id)}</button>` : '–';
  return `<tr><td>${esc(d.action)}</td><td>${esc(d.namespace)}/${esc(d.pod)}</td>` +
    `<td>${esc(d.source)} → ${esc(d.target)}</td><td>${esc(d.strategy)}</td><td>${esc(d.policy)}</td>` +
    `<td>${esc(d.reason)}</td><td>${id}</td></tr>`;
}

function renderPlan() {
  const p = state.plan;
  const m = state.meta || {};
  $('#mode').textContent = m.auto_migration === false
    ? 'Rebalancer: plans only on request (ENABLE_AUTO_MIGRATION=false)'
    : `Rebalancer: on${m.dry_run ? ', dry run (nothing is moved)' : ''}; threshold ${m.threshold_pct ?? '?'}%`;
  if (!p) return;
  const kind = p.source === 'cycle' ? `Last cycle at ${p.at}` : `Preview planned at ${p.at} (no cycle has run)`;
  const hot = p.pressured.length ? `${p.pressured.length} node(s) above the threshold: ${p.pressured.slice(0, 10).join(', ')}${p.pressured.length > 10 ? ', …' : ''}` : 'no node above the threshold';
  $('#plan-summary').textContent =
    `${kind}${p.duration_ms != null ? ` (${p.duration_ms.toFixed(1)} ms)` : ''}; basis ${p.basis_used}; ${hot}; ` +
    `${p.moves.length} move(s) planned, ${p.skipped_total} candidate(s) left in place.`;
  const decisions = (p.recent && p.recent.length ? p.recent : p.decisions).slice().reverse();
  $('#decisions tbody').innerHTML = decisions.map(decisionRow).join('') ||
    '<tr><td colspan="7">No decision yet.</td></tr>';
  $('#moves tbody').innerHTML = p.moves.map((mv) =>
    `<tr><td>${esc(mv.namespace)}/${esc(mv.pod)}</td><td>${esc(mv.source)} → ${esc(mv.target)}</td>` +
    `<td>${esc(mv.criticality)}</td><td>${esc(mv.strategy)}</td><td>${esc(mv.reason)}</td></tr>`).join('') ||
    '<tr><td colspan="5">No move planned.</td></tr>';
  const more = p.skipped_total > p.skipped.length
    ? `<tr><td colspan="3">… and ${p.skipped_total - p.skipped.length} more: <a href="/api/v1/plan">the whole plan</a></td></tr>` : '';
  $('#skipped tbody').innerHTML = (p.skipped.map((s) =>
    `<tr><td>${esc(s.namespace)}/${esc(s.pod)}</td><td>${esc(s.node)}</td><td>${esc(s.reason)}</td></tr>`).join('') ||
    '<tr><td colspan="3">None.</td></tr>') + more;
  $('#notes').innerHTML = p.notes.map((n) => `<li>${esc(n)}</li>`).join('') || '<li>None.</li>';
}

const dirty = new Set();
let frame = 0;
function queue(...parts) {
  parts.forEach((p) => dirty.add(p));
  if (!frame) frame = requestAnimationFrame(flush);
}
function flush() {
  frame = 0;
  if (dirty.has('nodes')) renderNodes();
  if (dirty.has('jobs')) renderJobs();
  if (dirty.has('plan')) keepFocus(renderPlan);
  dirty.clear();
  if (!state.firstRender && state.meta) {
    state.firstRender = true;
    performance.mark('sdi:first-render');
    const ms = performance.now();
    document.body.dataset.firstRenderMs = ms.toFixed(0);
    $('#render-time').textContent = `First render ${ms.toFixed(0)} ms after navigation started.`;
  }
}

// ---- the stream ----------------------------------------------------------

function onEvent(name, data) {
  let v;
  try { v = JSON.parse(data); } catch (e) { return; }
  if (name === 'snapshot') {
    state.meta = v;
    state.jobs = new Map(v.jobs.map((j) => [j.migration_id, j]));
    state.plan = v.plan;
    state.nodes = v.nodes;
    queue('nodes', 'jobs', 'plan');
  } else if (name === 'job') {
    state.jobs.set(v.migration_id, v);
    queue('jobs');
  } else if (name === 'plan') {
    state.plan = v;
    queue('plan');
  } else if (name === 'nodes') {
    state.nodes = v;
    queue('nodes');
  }
}

function nodeQuery() {
  const f = new FormData($('#node-filter'));
  const q = new URLSearchParams();
  if (f.get('name')) q.set('name', f.get('name'));
  if (f.get('pressured')) q.set('pressured', 'true');
  if (f.get('sort') !== 'pressure') q.set('sort', f.get('sort'));
  q.set('limit', f.get('limit'));
  return q.toString();
}

let controller = null;
let retryMs = 1000;
async function connect() {
  if (controller) controller.abort();
  const mine = new AbortController();
  controller = mine;
  const conn = $('#conn');
  try {
    const r = await fetch(`/api/v1/stream?${nodeQuery()}`,
      { headers: headers({ Accept: 'text/event-stream' }), signal: mine.signal, cache: 'no-store' });
    if (!r.ok) {
      let why = `${r.status}`;
      try { const b = await r.json(); why = `${r.status} ${b.error}: ${b.details}`; } catch (e) { /* not JSON */ }
      throw new Error(r.status === 401 || r.status === 403 ? `${why} (set an API token above)` : why);
    }
    conn.textContent = 'Live: changes arrive as they happen.';
    retryMs = 1000;
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let name = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) name = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length) onEvent(name, data.join('\n'));
      }
    }
    throw new Error('the stream ended');
  } catch (e) {
    if (mine.signal.aborted) return;
    conn.textContent = `Disconnected (${e.message}); reconnecting in ${retryMs / 1000} s.`;
    setTimeout(() => { if (controller === mine) connect(); }, retryMs);
    retryMs = Math.min(retryMs * 2, 15000);
  }
}

// ---- actions ---------------------------------------------------------------

function select(id, opener) {
  state.selected = id;
  state.opener = opener || null;
  renderJobs();
  if (!$('#detail').hidden) $('#detail-h').focus();
}

function closeDetail() {
  const id = state.selected;
  state.selected = null;
  renderJobs();
  const back = id && document.querySelector(`#migrations button[data-id="${CSS.escape(id)}"]`);
  (back || $('#migrations-h')).focus();
}

async function cancel(id) {
  if (!window.confirm(`Cancel migration ${id}? It stops and undoes what it created.`)) return;
  const notice = $('#notice');
  try {
    const r = await fetch(`/api/v1/migrations/${encodeURIComponent(id)}`, { method: 'DELETE', headers: headers() });
    const b = await r.json().catch(() => ({}));
    if (r.ok) notice.textContent = `${id}: ${b.message || 'cancellation requested'}.`;
    else if (r.status === 401 || r.status === 403) notice.textContent = `Not allowed to cancel ${id}: ${b.details || r.status}. Set an API token with the right to cancel.`;
    else notice.textContent = `${id}: ${b.error || r.status}${b.details ? ` — ${b.details}` : ''}.`;
  } catch (e) {
    notice.textContent = `${id}: the cancel request failed (${e.message}).`;
  }
}

document.addEventListener('click', (e) => {
  const b = e.target.closest('button.details');
  if (b) select(b.dataset.id === state.selected && b.closest('#migrations') ? null : b.dataset.id, b);
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && state.selected) closeDetail();
});

function init() {
  $('#detail-close').addEventListener('click', closeDetail);
  $('#detail-cancel').addEventListener('click', () => state.selected && cancel(state.selected));
  $('#token').value = token();
  $('#token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('#token').value.trim());
    $('#notice').textContent = token() ? 'Token set: requests now carry it.' : 'No token set.';
    connect();
  });
  $('#token-clear').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $('#token').value = '';
    $('#notice').textContent = 'Token forgotten.';
    connect();
  });
  let debounce = 0;
  const filter = $('#node-filter');
  filter.addEventListener('submit', (e) => e.preventDefault());
  filter.addEventListener('input', () => { clearTimeout(debounce); debounce = setTimeout(connect, 300); });
  // Durations of running migrations move on between events.
  setInterval(() => {
    if ([...state.jobs.values()].some((j) => !TERMINAL.has(j.status))) queue('jobs');
  }, 1000);
  connect();
}
init();
