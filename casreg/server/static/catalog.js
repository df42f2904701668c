/* casreg's web catalog: hand-written, no library. It reads casreg's REST API (/api/casreg/v1) from the
   server that served it; every list is paged by the server (limit/offset), so a model of 10,000
   versions costs one page at a time. Views: #/ (models), #/model/<id>?offset=N, #/version/<id>. */
"use strict";

const API = "/api/casreg/v1";
const PAGE = 50;
const main = document.getElementById("main");
const crumbs = document.getElementById("crumbs");

function el(tag, attrs, ...kids) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v);
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined) node.append(kid);
  return node;
}

function svg(tag, attrs, ...kids) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const kid of kids.flat()) if (kid) node.append(kid);
  return node;
}

async function api(path) {
  const response = await fetch(API + path, {headers: {Accept: "application/json"}});
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) throw new Error((body && body.message) || `HTTP ${response.status}`);
  return body;
}

function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0, v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
const when = t => new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19);
const ratio = r => `${Number(r).toFixed(2)}×`;
const badge = (text, cls) => el("span", {class: `badge ${cls || ""}`, text});
const num = (text, attrs) => el("td", {class: "num", text, ...(attrs || {})});

function setCrumbs(...parts) {
  crumbs.replaceChildren(...parts.map(([text, href]) => href ? el("a", {href, text}) : el("span", {text})));
}

function pager(page, go) {
  const last = Math.min(page.offset + page.items.length, page.total);
  return el("div", {class: "pager"},
    el("button", {text: "← newer", disabled: page.offset === 0 ? "" : null,
                  onclick: () => go(Math.max(0, page.offset - page.limit))}),
    el("span", {class: "muted", text: page.total ? `${page.offset + 1}–${last} of ${page.total}` : "none"}),
    el("button", {text: "older →", disabled: last >= page.total ? "" : null,
                  onclick: () => go(page.offset + page.limit)}));
}

function metaTable(meta) {
  const keys = Object.keys(meta || {}).sort();
  if (!keys.length) return el("p", {class: "muted", text: "No metadata."});
  return el("table", {class: "meta"},
    el("tr", {}, el("th", {text: "key"}), el("th", {text: "value"})),
    keys.map(k => el("tr", {}, el("td", {}, el("code", {text: k})),
                     el("td", {text: typeof meta[k] === "string" ? meta[k] : JSON.stringify(meta[k])}))));
}

function card(value, label, attrs) {
  return el("div", {class: "card", ...(attrs || {})}, el("b", {text: value}), el("span", {text: label}));
}

/* Logical vs stored bytes over the versions of a page, oldest to newest, both cumulative: logical
   adds each version's size, stored what each version added to the store over the one before it. */
function chart(items) {
  const rows = items.slice().reverse();
  const W = 760, H = 250, L = 70, R = 16, T = 18, B = 40;
  const root = svg("svg", {class: "chart", id: "chart", width: W, height: H, viewBox: `0 0 ${W} ${H}`,
                           role: "img", "aria-label": "logical vs stored bytes"});
  if (!rows.length) return root;
  let logical = 0, stored = 0;
  const points = rows.map(r => ({r, logical: (logical += r.size), stored: (stored += r.new_stored_bytes)}));
  const top = Math.max(1, logical, stored);
  const x = i => L + (rows.length === 1 ? (W - L - R) / 2 : i * (W - L - R) / (rows.length - 1));
  const y = v => T + (H - T - B) * (1 - v / top);
  const line = key => points.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" ");
  root.append(svg("line", {class: "axis", x1: L, y1: y(0), x2: W - R, y2: y(0)}),
              svg("line", {class: "axis", x1: L, y1: T, x2: L, y2: y(0)}));
  for (const f of [0, 0.5, 1]) {
    root.append(svg("text", {x: L - 6, y: y(top * f) + 4, "text-anchor": "end", text: bytes(Math.round(top * f))}));
  }
  root.append(svg("text", {x: L, y: H - 12, text: rows[0].version}),
              svg("text", {x: W - R, y: H - 12, "text-anchor": "end", text: rows[rows.length - 1].version}),
              svg("path", {class: "logical", d: line("logical")}),
              svg("path", {class: "stored", d: line("stored")}));
  points.forEach((p, i) => {
    const tip = `${p.r.version}: ${bytes(p.logical)} logical, ${bytes(p.stored)} stored (cumulative)`;
    root.append(svg("circle", {cx: x(i), cy: y(p.logical), r: 2.5, fill: "#2f6fb0"}, svg("title", {text: tip})),
                svg("circle", {cx: x(i), cy: y(p.stored), r: 2.5, fill: "#d2691e"}, svg("title", {text: tip})));
  });
  return root;
}

async function showModels(params) {
  const offset = Number(params.get("offset") || 0), q = params.get("q") || "";
  setCrumbs(["models"]);
  const page = await api(`/models?offset=${offset}&limit=${PAGE}&q=${encodeURIComponent(q)}`);
  const go = (o, query) => { location.hash = `#/?offset=${o}&q=${encodeURIComponent(query ?? q)}`; };
  const search = el("input", {type: "search", placeholder: "filter models by name", value: q,
                              onchange: e => go(0, e.target.value)});
  main.replaceChildren(
    el("h1", {text: "Models"}), search, pager(page, o => go(o)),
    el("table", {id: "models"},
      el("tr", {}, el("th", {text: "model"}), el("th", {class: "num", text: "versions"}), el("th", {text: "latest"}),
         el("th", {class: "num", text: "logical size"}), el("th", {text: "state"}), el("th", {text: "description"})),
      page.items.map(m => el("tr", {class: "model-row"},
        el("td", {}, el("a", {href: `#/model/${m.id}`, text: m.model})), num(String(m.versions)),
        el("td", {text: m.latest || ""}), num(bytes(m.logical_bytes)), el("td", {}, badge(m.state, m.state)),
        el("td", {text: m.description})))));
}

async function showModel(mid, params) {
  const offset = Number(params.get("offset") || 0);
  const [model, page] = await Promise.all([api(`/models/${mid}`), api(`/models/${mid}/versions?offset=${offset}&limit=${PAGE}`)]);
  setCrumbs(["models", "#/"], [model.model]);
  document.title = `${model.model} · casreg`;
  const aliases = Object.entries(model.aliases);
  main.replaceChildren(
    el("h1", {text: model.model}),
    el("div", {class: "cards"}, card(String(model.versions), "versions"), card(bytes(model.logical_bytes), "logical bytes"),
       card(model.state, "state"), card(model.latest || "–", "latest (by name)")),
    aliases.length ? el("p", {}, "Aliases: ", aliases.map(([a, v]) => badge(`${a} → ${v}`, "alias"))) : null,
    el("h2", {text: "Logical vs stored bytes"}),
    el("p", {class: "legend muted"}, "Versions on this page, oldest to newest, cumulative: ",
       el("span", {class: "logical", text: "■ logical"}), " · ",
       el("span", {class: "stored", text: "■ stored (what each version added over the one before)"})),
    chart(page.items),
    el("h2", {text: "Versions (newest first)"}),
    pager(page, o => { location.hash = `#/model/${mid}?offset=${o}`; }),
    el("table", {id: "versions"},
      el("tr", {}, ["version", "time"].map(t => el("th", {text: t})),
         ["size", "stored", "new (stored)", "dedup"].map(t => el("th", {class: "num", text: t})),
         el("th", {text: "state"}), el("th", {text: "names"})),
      page.items.map(v => el("tr", {class: "version-row"},
        el("td", {}, el("a", {href: `#/version/${v.id}`, text: v.version})), el("td", {text: when(v.time)}),
        num(bytes(v.size)), num(bytes(v.stored_bytes)), num(bytes(v.new_stored_bytes)), num(ratio(v.dedup_ratio)),
        el("td", {}, badge(v.state, v.state)),
        el("td", {}, v.aliases.map(a => badge(a, "alias")), v.tags.map(t => badge(t)))))),
    el("h2", {text: "Model metadata"}), metaTable(model.metadata));
}

async function showVersion(vid) {
  const [v, files, history] = await Promise.all([api(`/versions/${vid}`), api(`/versions/${vid}/files`),
                                                 api(`/versions/${vid}/history`)]);
  setCrumbs(["models", "#/"], [v.model, `#/model/${v.model_id}`], [v.version]);
  document.title = `${v.model} ${v.version} · casreg`;
  main.replaceChildren(
    el("h1", {text: `${v.model} · ${v.version}`}),
    el("p", {class: "muted"}, `${when(v.time)} by ${v.author}`, v.message ? ` — ${v.message}` : "",
       el("br"), el("code", {text: v.commit})),
    el("div", {class: "cards", id: "sizes"},
       card(bytes(v.size), "size (logical)", {"data-bytes": v.size}), card(bytes(v.unique_bytes), "distinct chunks"),
       card(bytes(v.stored_bytes), "stored", {"data-bytes": v.stored_bytes}), card(ratio(v.dedup_ratio), "dedup"),
       card(bytes(v.new_stored_bytes), v.previous ? `new over ${v.previous} (stored)` : "new (stored)"),
       card(v.state, "state")),
    el("p", {}, "Aliases: ", v.aliases.length ? v.aliases.map(a => badge(a, "alias")) : el("span", {class: "muted", text: "none"}),
       " Tags: ", v.tags.length ? v.tags.map(t => badge(t)) : el("span", {class: "muted", text: "none"})),
    el("h2", {text: "Metadata"}), metaTable(v.metadata),
    el("h2", {text: `Files (${files.files.length})`}),
    el("table", {id: "files"},
      el("tr", {}, el("th", {text: "path"}), el("th", {class: "num", text: "size"})),
      files.files.map(f => el("tr", {}, el("td", {}, el("a", {href: f.url, text: f.path})), num(bytes(f.size))))),
    el("h2", {text: "History"}),
    el("table", {id: "history"},
      el("tr", {}, ["time", "who", "what"].map(t => el("th", {text: t}))),
      history.moves.map(m => el("tr", {}, el("td", {text: when(m.time)}), el("td", {text: m.who}),
        el("td", {text: `${m.message}: ${m.old ? m.old.slice(0, 12) : "∅"} → ${m.new ? m.new.slice(0, 12) : "∅"}`}))),
      history.metadata.map(c => el("tr", {}, el("td", {text: when(c.time)}), el("td", {text: c.author}),
        el("td", {text: c.message})))));
}

async function route() {
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  try {
    if (parts[0] === "model" && parts[1]) await showModel(parts[1], params);
    else if (parts[0] === "version" && parts[1]) await showVersion(parts[1]);
    else await showModels(params);
  } catch (err) {
    main.replaceChildren(el("p", {class: "error", text: String(err.message || err)}));
  }
  main.setAttribute("data-ready", location.hash || "#/");
}

window.addEventListener("hashchange", route);
route();
