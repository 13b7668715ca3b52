// The hub operator's live queue: a snapshot, then a new snapshot after every change
// (Server-Sent Events from /v1/hubs/{hub}/dispatch/stream, with the signed-in session).
// Times in the hub's own time zone. No framework, no CDN.
(function () {
  const boot = JSON.parse(document.body.dataset.boot);
  const hub = boot.hub;
  const svgNS = "http://www.w3.org/2000/svg";
  const COLORS = ["#0b7a5a", "#1c7ed6", "#ae3ec9", "#e8590c", "#2f9e44", "#c2255c", "#5f3dc4"];
  const $ = (id) => document.getElementById(id);
  let updates = 0, timezone = "UTC", lastSnap = null;
  const references = {};  // booking id -> carrier reference (GET /v1/bookings/{id}, once)

  function problem(text) {
    const p = $("problem");
    p.textContent = text;
    p.hidden = !text;
  }

  function fmt(iso, withDate) {
    if (!iso) return "–";
    const options = { timeZone: timezone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    if (withDate) Object.assign(options, { weekday: "short", day: "numeric", month: "short" });
    return new Intl.DateTimeFormat("en-GB", options).format(new Date(iso));
  }

  function localDay(iso) {
    return new Intl.DateTimeFormat("en-CA", { timeZone: timezone }).format(new Date(iso));
  }

  function duration(ms) {
    const minutes = Math.max(0, Math.round(ms / 60000));
    return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }

  function el(name, attrs, parent) {
    const node = document.createElementNS(svgNS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function row(table, cells, cls) {
    const tr = document.createElement("tr");
    if (cls) tr.className = cls;
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c === null || c === undefined ? "–" : String(c);
      tr.appendChild(td);
    }
    document.querySelector(table + " tbody").appendChild(tr);
    return tr;
  }

  // where a running route's vehicle is: the share of its planned duration gone by (event
  // time), along hub -> stops -> hub. An estimate, and drawn as one.
  function progressOf(route, clock) {
    if (route.status !== "running" || !route.started_at || !clock) return route.status === "running" ? 0 : null;
    const total = Math.max(1, route.planned_duration_min) * 60000;
    return Math.min(1, Math.max(0, (new Date(clock) - new Date(route.started_at)) / total));
  }

  function along(points, share) {
    const legs = [];
    let total = 0;
    for (let i = 1; i < points.length; i++) {
      const d = Math.hypot(points[i][0] - points[i - 1][0], points[i][1] - points[i - 1][1]);
      legs.push(d);
      total += d;
    }
    let left = share * total;
    for (let i = 0; i < legs.length; i++) {
      if (left <= legs[i] || i === legs.length - 1) {
        const f = legs[i] ? Math.min(1, left / legs[i]) : 0;
        return [points[i][0] + f * (points[i + 1][0] - points[i][0]),
          points[i][1] + f * (points[i + 1][1] - points[i][1])];
      }
      left -= legs[i];
    }
    return points[0];
  }

  function drawMap(snap) {
    const svg = $("map");
    svg.replaceChildren();
    const hubAt = snap.hub ? snap.hub.location : null;
    const points = snap.stops.map((s) => s.location);
    for (const r of snap.routes) for (const s of r.stops) if (s.location) points.push(s.location);
    if (hubAt) points.push(hubAt);
    if (!points.length) return;
    const lats = points.map((p) => p.lat), lons = points.map((p) => p.lon);
    const minLat = Math.min(...lats), maxLat = Math.max(...lats);
    const minLon = Math.min(...lons), maxLon = Math.max(...lons);
    const span = Math.max(maxLat - minLat, (maxLon - minLon) * 0.6, 0.005);
    const cx = (minLon + maxLon) / 2, cy = (minLat + maxLat) / 2;
    const x = (p) => 300 + ((p.lon - cx) * 0.6 / span) * 380;
    const y = (p) => 210 - ((p.lat - cy) / span) * 380;
    for (const s of snap.stops) {
      el("circle", {
        cx: x(s.location), cy: y(s.location), r: 4, class: "stop " + s.status,
        fill: s.status === "expected" ? "#94a3b8" : "#d9480f",
      }, svg);
    }
    snap.routes.forEach((r, i) => {
      const color = COLORS[i % COLORS.length];
      const stops = r.stops.filter((s) => s.location).sort((a, b) => a.sequence - b.sequence);
      if (!hubAt || !stops.length) return;
      const path = [hubAt, ...stops.map((s) => s.location), hubAt].map((p) => [x(p), y(p)]);
      el("polyline", {
        points: path.map((p) => p.join(",")).join(" "), fill: "none", stroke: color,
        "stroke-width": 2.5, "stroke-dasharray": r.status === "planned" ? "6 4" : "none",
        class: "route", "data-route": r.route_id, "data-stops": stops.length,
      }, svg);
      for (const s of stops) {
        el("circle", { cx: x(s.location), cy: y(s.location), r: 6, fill: "#fff", stroke: color,
          "stroke-width": 2, class: "route-stop", "data-route": r.route_id,
          "data-sequence": s.sequence }, svg);
        const label = el("text", { x: x(s.location), y: y(s.location) + 3, "font-size": 8,
          "text-anchor": "middle", fill: color }, svg);
        label.textContent = s.sequence;
      }
      const share = progressOf(r, snap.clock);
      if (share !== null) {
        const [vx, vy] = along(path, share);
        const v = el("polygon", { points: `${vx},${vy - 8} ${vx - 7},${vy + 5} ${vx + 7},${vy + 5}`,
          fill: color, stroke: "#12344d", class: "vehicle", "data-vehicle": r.vehicle_id }, svg);
        const t = document.createElementNS(svgNS, "title");
        t.textContent = `${r.vehicle_id}: about ${Math.round(share * 100)} % of ${r.route_id}`;
        v.appendChild(t);
      }
    });
    if (hubAt) {
      el("rect", { x: x(hubAt) - 8, y: y(hubAt) - 8, width: 16, height: 16, fill: "#12344d" }, svg);
      const label = el("text", { x: x(hubAt) + 12, y: y(hubAt) + 5, "font-size": 13 }, svg);
      label.textContent = snap.hub.name || snap.hub_id;
    }
  }

  async function reference(bookingId, cell) {
    if (references[bookingId] === undefined) {
      references[bookingId] = fetch(`/v1/bookings/${encodeURIComponent(bookingId)}`)
        .then((res) => (res.ok ? res.json() : null))
        .then((b) => (b ? b.carrier_reference : bookingId.slice(0, 8)));
    }
    cell.textContent = await references[bookingId];
  }

  function render(snap) {
    lastSnap = snap;
    timezone = (snap.hub && snap.hub.timezone) || "UTC";
    $("clock").textContent = snap.clock ? `${fmt(snap.clock, true)} (${timezone})` : "–";
    $("last-wave").textContent = fmt(snap.last_wave_at);
    $("updates").textContent = updates;
    const today = snap.clock ? localDay(snap.clock) : null;

    // the waiting stops, longest waiting first
    const waiting = snap.stops.filter((s) => s.status !== "expected")
      .sort((a, b) => (a.queued_at || "").localeCompare(b.queued_at || ""));
    const expected = snap.stops.length - waiting.length;
    document.querySelector("#waiting tbody").replaceChildren();
    for (const s of waiting) {
      const since = s.queued_at
        ? `${fmt(s.queued_at)} (${duration(new Date(snap.clock) - new Date(s.queued_at))})` : "–";
      const why = s.reason || (s.status === "failed" ? "delivery failed, to be planned again"
        : "checked in, waiting for the next wave");
      const tr = row("#waiting", [s.carrier_id, "…", s.stop_id, s.parcels, why, since],
        "stop-row " + s.status);
      tr.dataset.booking = s.booking_id;
      reference(s.booking_id, tr.children[1]);
    }
    $("queue-count").textContent = `${waiting.length} waiting · ${expected} expected (not yet checked in)`;
    $("queue-empty").hidden = waiting.length > 0;

    // today's waves (hub time), from the routes the snapshot holds
    const waves = {};
    for (const r of [...snap.routes, ...(snap.completed || [])]) {
      if (!r.planned_at || (today && localDay(r.planned_at) !== today)) continue;
      const w = waves[r.wave_id] || (waves[r.wave_id] = { at: r.planned_at, routes: 0, stops: 0,
        parcels: 0, km: 0, solvers: new Set() });
      w.routes += 1; w.stops += r.stops.length; w.parcels += r.load_parcels; w.km += r.planned_km;
      w.solvers.add(r.solver);
      if (r.planned_at < w.at) w.at = r.planned_at;
    }
    document.querySelector("#waves-table tbody").replaceChildren();
    const ordered = Object.entries(waves).sort((a, b) => b[1].at.localeCompare(a[1].at));
    for (const [id, w] of ordered) {
      row("#waves-table", [id, fmt(w.at), w.routes, w.stops, w.parcels, w.km.toFixed(1),
        [...w.solvers].join(", ")]);
    }
    $("waves").textContent = ordered.length;

    const routeOf = {};
    for (const r of snap.routes) routeOf[r.route_id] = r;
    document.querySelector("#vehicles tbody").replaceChildren();
    for (const v of snap.vehicles) {
      const r = v.route_id ? routeOf[v.route_id] : null;
      const share = r ? progressOf(r, snap.clock) : null;
      const state = v.state === "free" ? "free" : v.state.replace("_", " ");
      const tr = row("#vehicles", [v.vehicle_id, v.type.replace(/_/g, " "), state,
        v.battery_pct === null ? null : Math.round(v.battery_pct) + " %", v.route_id,
        share === null ? (v.why_not_free || "") : `~${Math.round(share * 100)} %`]);
      tr.children[2].className = "state-" + v.state;
    }
    document.querySelector("#routes tbody").replaceChildren();
    for (const r of snap.routes) {
      const tr = row("#routes", [r.route_id, r.vehicle_id, r.status, r.stops.length, r.load_parcels,
        r.planned_km.toFixed(1), fmt(r.started_at)], "route-row " + r.status);
      tr.dataset.route = r.route_id;
    }
    drawMap(snap);
  }

  async function explain(res) {
    let detail = "";
    try { detail = (await res.json()).detail; } catch (e) { detail = res.statusText; }
    if (res.status === 401) return "You are signed out: sign in again at /ui/.";
    if (res.status === 404) {
      const all = await fetch("/v1/hubs").then((r) => (r.ok ? r.json() : []));
      const known = all.map((h) => h.id).join(", ");
      return `${detail}${known ? ` Known hubs: ${known}.` : ""}`;
    }
    return `${res.status}: ${detail}`;
  }

  async function switcher() {
    if (!boot.admin) return;
    const hubs = await fetch("/v1/hubs").then((r) => (r.ok ? r.json() : []));
    const select = $("hub-switch");
    for (const h of hubs) {
      const option = document.createElement("option");
      option.value = h.id; option.textContent = `${h.id} (${h.city.name})`;
      option.selected = h.id === hub;
      select.appendChild(option);
    }
    select.addEventListener("change", () => { location.href = `/ui/hubs/${encodeURIComponent(select.value)}`; });
    select.parentElement.hidden = false;
  }

  async function start() {
    switcher();
    const conn = $("conn");
    const first = await fetch(`/v1/hubs/${encodeURIComponent(hub)}/dispatch`);
    if (!first.ok) {
      conn.textContent = "not available"; conn.className = "pill down";
      problem(await explain(first));
      return;
    }
    render(await first.json());
    let failures = 0;
    const source = new EventSource(`/v1/hubs/${encodeURIComponent(hub)}/dispatch/stream`);
    source.addEventListener("open", () => {
      failures = 0; conn.textContent = "live"; conn.className = "pill live"; problem("");
    });
    source.addEventListener("error", async () => {
      failures += 1;
      conn.textContent = "reconnecting…"; conn.className = "pill down";
      const check = await fetch(`/v1/hubs/${encodeURIComponent(hub)}/dispatch`).catch(() => null);
      if (check && !check.ok) {  // not a dropped connection: it will not come back by itself
        source.close();
        conn.textContent = "stopped";
        problem(await explain(check));
      } else if (!check && failures > 3) {
        problem("The server does not answer; still trying. The figures below are from "
          + (lastSnap && lastSnap.clock ? fmt(lastSnap.clock, true) : "before") + ".");
      }
    });
    source.addEventListener("snapshot", (e) => { updates += 1; render(JSON.parse(e.data)); });
    source.addEventListener("change", (e) => { updates += 1; render(JSON.parse(e.data).snapshot); });
  }

  start();
})();
