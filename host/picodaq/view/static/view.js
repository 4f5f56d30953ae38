// picodaq live view: server-sent events in, stacked channels on a canvas out. No dependencies.
//
// Events (server.py): meta (labels, rate, bucket, unit), cols (min/max columns of `bucket`
// instants of the recording's grid, counts), gap, marker, stats (link and view counters), end.
// Everything received and drawn is kept in window.picodaq, so a test (or a curious user in the
// console) reads what the page has, not only what it looks like.
"use strict";

const SIGNAL = "#1f5fa8", MARKER = "#d62728", GAP = "rgba(120,120,120,0.28)", GAP_LINE = "#8a8a8a";
const params = new URLSearchParams(location.search);

const P = (window.picodaq = {
  meta: null,
  status: "connecting",
  columns: new Map(), // column number -> [lo[], hi[]] (counts, one value per channel)
  newest: -1,
  gaps: [], // {pos, span, label, reason, start, end} (seconds on the grid)
  markers: [], // {pos, code, t}
  stats: null,
  received: { messages: 0, columns: 0, perChannel: [] }, // columns holding data, per channel
  drawn: { frames: 0, t0: 0, t1: 0, channels: [], gaps: [], markers: [] },
  // one pixel of the canvas (device pixels), for tests: [r, g, b, a]
  pixel(x, y) {
    return Array.from(canvas.getContext("2d").getImageData(x, y, 1, 1).data);
  },
});

const canvas = document.getElementById("plot");
const statusEl = document.getElementById("status");
const countersEl = document.getElementById("counters");
let dirty = true;

function setStatus(text, cls) {
  P.status = text;
  statusEl.textContent = text;
  statusEl.className = cls || "";
}

function windowSeconds() {
  const w = parseFloat(params.get("window"));
  return w > 0 ? w : P.meta ? P.meta.window_s : 10;
}

function onMeta(m) {
  P.meta = m;
  document.getElementById("title").textContent = m.title;
  if (P.received.perChannel.length !== m.labels.length) P.received.perChannel = m.labels.map(() => 0);
  dirty = true;
}

function onCols(d) {
  const n = d.cols.length, nch = d.lo.length;
  for (let k = 0; k < n; k++) {
    const lo = new Array(nch), hi = new Array(nch);
    for (let c = 0; c < nch; c++) {
      lo[c] = d.lo[c][k];
      hi[c] = d.hi[c][k];
    }
    const col = d.cols[k];
    if (!P.columns.has(col)) {
      P.received.columns++;
      for (let c = 0; c < nch; c++) P.received.perChannel[c] = (P.received.perChannel[c] || 0) + 1;
    }
    P.columns.set(col, [lo, hi]);
    if (col > P.newest) P.newest = col;
  }
  // keep twice the window: enough to redraw after a resize, bounded whatever the recording's length
  if (P.meta) {
    const keep = (2 * windowSeconds() * P.meta.rate) / P.meta.bucket;
    if (P.columns.size > keep) for (const c of P.columns.keys()) if (c < P.newest - keep) P.columns.delete(c);
  }
  dirty = true;
}

function onGap(g) {
  if (P.gaps.some((x) => x.pos === g.pos && x.label === g.label)) return; // sent again after a reconnect
  const rate = P.meta ? P.meta.rate : 1;
  P.gaps.push({ ...g, start: g.pos / rate, end: (g.pos + g.span) / rate });
  dirty = true;
}

function onMarker(m) {
  if (P.markers.some((x) => x.pos === m.pos && x.code === m.code)) return;
  P.markers.push({ ...m, t: m.pos / (P.meta ? P.meta.rate : 1) });
  dirty = true;
}

function fmt(n) {
  return typeof n === "number" ? n.toLocaleString("en-US") : "-";
}

function onStats(s) {
  P.stats = s;
  const l = s.link || {}, o = s.observer || {}, p = s.page || {};
  const bad = (v) => (v ? ` class="bad"` : "");
  const parts = [
    `<b>${fmt(l.rate)}</b> instants/s`,
    `${fmt(l.frames_ok)} frames`,
    `<span${bad(l.crc_errors)}>${fmt(l.crc_errors)} CRC errors</span>`,
    `<span${bad(l.samples_lost)}>${fmt(l.samples_lost)} samples lost</span>`,
    `<span${bad(l.device_dropped)}>${fmt(l.device_dropped)} dropped on the board</span>`,
    `${fmt(P.markers.length)} markers`,
    `view: <span${bad(o.instants_dropped || p.columns_dropped)}>${fmt(o.instants_dropped)} instants skipped, ` +
      `${fmt(p.columns_dropped)} columns dropped</span> (this page too slow)`,
  ];
  if (l.state) parts.push(`[${l.state}]`);
  if (l.error) parts.push(`<span class="bad">${l.error}</span>`);
  countersEl.innerHTML = parts.join(" &nbsp;·&nbsp; ");
}

const es = new EventSource("events");
es.onopen = () => setStatus("live", "live");
es.onerror = () => {
  if (P.status !== "recording ended") setStatus("connection lost: retrying", "lost");
};
const handlers = { meta: onMeta, cols: onCols, gap: onGap, marker: onMarker, stats: onStats };
for (const [name, fn] of Object.entries(handlers)) {
  es.addEventListener(name, (e) => {
    P.received.messages++;
    fn(JSON.parse(e.data));
  });
}
es.addEventListener("end", (e) => {
  onStats(JSON.parse(e.data).stats);
  es.close();
  setStatus("recording ended", "ended");
  dirty = true;
});

function niceStep(span, target) {
  const raw = span / target, p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function draw() {
  dirty = false;
  const dpr = window.devicePixelRatio || 1;
  const W = Math.max(1, Math.round(canvas.clientWidth * dpr)), H = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== W || canvas.height !== H) {
    canvas.width = W;
    canvas.height = H;
  }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, W, H);
  const m = P.meta;
  const drawn = { frames: P.drawn.frames + 1, t0: 0, t1: 0, channels: [], gaps: [], markers: [] };
  P.drawn = drawn;
  if (!m || !m.labels.length) return;
  const font = Math.round(11 * dpr);
  ctx.font = `${font}px system-ui, sans-serif`;
  const left = Math.round(96 * dpr), right = Math.round(10 * dpr), top = Math.round(18 * dpr), bottom = Math.round(24 * dpr);
  const plotW = W - left - right, plotH = H - top - bottom, nch = m.labels.length, laneH = plotH / nch;
  const win = windowSeconds(), colS = m.bucket / m.rate;
  const newestT = (P.newest + 1) * colS;
  const t0 = Math.max(0, newestT - win), t1 = t0 + win;
  drawn.t0 = t0;
  drawn.t1 = t1;
  const xOf = (t) => left + ((t - t0) / win) * plotW;
  const colW = Math.max(1, (colS / win) * plotW);
  const visible = [];
  for (const [c, v] of P.columns) if ((c + 1) * colS > t0 && c * colS < t1) visible.push([c, v]);
  visible.sort((a, b) => a[0] - b[0]);

  for (let ch = 0; ch < nch; ch++) {
    const y0 = top + ch * laneH, h = laneH - 3 * dpr;
    let lo = Infinity, hi = -Infinity;
    for (const [, v] of visible) {
      lo = Math.min(lo, v[0][ch] * m.per_count);
      hi = Math.max(hi, v[1][ch] * m.per_count);
    }
    if (!(hi >= lo)) {
      lo = -1;
      hi = 1;
    } else if (hi === lo) {
      lo -= 1;
      hi += 1;
    }
    const pad = (hi - lo) * 0.06;
    lo -= pad;
    hi += pad;
    const yOf = (v) => y0 + h - ((v - lo) / (hi - lo)) * h;
    ctx.fillStyle = ch % 2 ? "#fafafa" : "#f3f5f8";
    ctx.fillRect(left, y0, plotW, h);
    ctx.fillStyle = SIGNAL;
    let prev = -2, prevLo = 0, prevHi = 0;
    for (const [c, v] of visible) {
      let a = v[0][ch] * m.per_count, b = v[1][ch] * m.per_count;
      const lo_ = a, hi_ = b;
      if (c === prev + 1) {
        // joined to the column before, as a line joins samples: a sine stays one stroke
        a = Math.min(a, prevHi);
        b = Math.max(b, prevLo);
      }
      prev = c;
      prevLo = lo_;
      prevHi = hi_;
      const x = xOf(c * colS), ya = yOf(b), yb = yOf(a);
      ctx.fillRect(Math.floor(x), Math.floor(ya), Math.ceil(colW), Math.max(1, Math.ceil(yb - ya)));
    }
    ctx.fillStyle = "#333";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const roomy = h > 2.6 * font; // the unit under the label when the lane has room for both
    ctx.fillText(roomy ? m.labels[ch] : `${m.labels[ch]} (${m.unit})`, left - 6 * dpr, y0 + h / 2 - (roomy ? font * 0.6 : 0));
    if (roomy) {
      ctx.fillStyle = "#888";
      ctx.fillText(m.unit, left - 6 * dpr, y0 + h / 2 + font * 0.6);
    }
    drawn.channels.push({ label: m.labels[ch], columns: visible.length, lo, hi });
  }

  ctx.textAlign = "left";
  ctx.textBaseline = "alphabetic";
  for (const g of P.gaps) {
    if (g.end < t0 || g.start > t1) continue;
    const x0 = Math.round(xOf(g.start)), x1 = Math.round(xOf(g.end));
    if (x1 > x0) {
      ctx.fillStyle = GAP;
      ctx.fillRect(x0, top, x1 - x0, plotH);
    } else {
      ctx.strokeStyle = GAP_LINE;
      ctx.setLineDash([3 * dpr, 3 * dpr]);
      ctx.lineWidth = 1.5 * dpr;
      ctx.beginPath();
      ctx.moveTo(x0 + 0.5, top);
      ctx.lineTo(x0 + 0.5, top + plotH);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.fillStyle = "#555";
    ctx.fillText(g.label, x0 + 2 * dpr, top - 5 * dpr);
    drawn.gaps.push({ label: g.label, start: g.start, end: g.end, x0, x1 });
  }
  for (const mk of P.markers) {
    if (mk.t < t0 || mk.t > t1) continue;
    const x = Math.round(xOf(mk.t));
    ctx.strokeStyle = MARKER;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(x + 0.5, top);
    ctx.lineTo(x + 0.5, top + plotH);
    ctx.stroke();
    ctx.fillStyle = MARKER;
    ctx.fillText(String(mk.code), x + 3 * dpr, top + font);
    drawn.markers.push({ code: mk.code, t: mk.t, x });
  }

  // the time axis: seconds on the recording's grid
  ctx.fillStyle = "#333";
  ctx.strokeStyle = "#999";
  ctx.lineWidth = 1;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const step = niceStep(win, 8);
  for (let t = Math.ceil(t0 / step) * step; t <= t1 + 1e-9; t += step) {
    const x = Math.round(xOf(t)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(x, top + plotH);
    ctx.lineTo(x, top + plotH + 4 * dpr);
    ctx.stroke();
    ctx.fillText(`${+t.toFixed(3)} s`, x, top + plotH + 6 * dpr);
  }
}

setInterval(() => {
  if (dirty) draw();
}, 100);
window.addEventListener("resize", () => (dirty = true));
