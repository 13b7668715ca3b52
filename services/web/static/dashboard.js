// The hub operator's live queue: a snapshot, then a new snapshot after every change
// (Server-Sent Events from /v1/hubs/{hub}/dispatch/stream). No framework, no CDN.
(function () {
  const boot = JSON.parse(document.body.dataset.boot);
  const svgNS = "http://www.w3.org/2000/svg";
  const COLORS = ["#0b7a5a", "#1c7ed6", "#ae3ec9", "#e8590c", "#2f9e44", "#c2255c", "#5f3dc4"];
  let updates = 0;

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

  function drawMap(snap) {
    const svg = document.getElementById("map");
    svg.replaceChildren();
    const hub = snap.hub ? snap.hub.location : null;
    // route stops carry no coordinates: look them up among the queue's stops
    const where = {};
    for (const s of snap.stops) where[s.booking_id + "/" + s.stop_id] = s.location;
    for (const r of snap.routes) for (const s of r.stops) s.location = s.location || where[s.booking_id + "/" + s.stop_id];
    const points = snap.stops.map((s) => s.location);
    for (const r of snap.routes) for (const s of r.stops) if (s.location) points.push(s.location);
    if (hub) points.push(hub);
    if (!points.length) return;
    const lats = points.map((p) => p.lat), lons = points.map((p) => p.lon);
    const minLat = Math.min(...lats), maxLat = Math.max(...lats);
    const minLon = Math.min(...lons), maxLon = Math.max(...lons);
    const span = Math.max(maxLat - minLat, (maxLon - minLon) * 0.6, 0.005);
    const cx = (minLon + maxLon) / 2, cy = (minLat + maxLat) / 2;
    const x = (p) => 300 + ((p.lon - cx) * 0.6 / span) * 380;
    const y = (p) => 210 - ((p.lat - cy) / span) * 380;
    snap.routes.forEach((r, i) => {
      const stops = r.stops.filter((s) => s.location);
      if (!hub) return;
      let path;
      if (stops.length) {
        path = [hub, ...stops.map((s) => s.location), hub].map((p) => `${x(p)},${y(p)}`);
      } else {  // schematic: a loop out of the hub, one per route
        const a = (i / Math.max(1, snap.routes.length)) * 2 * Math.PI, hx = x(hub), hy = y(hub);
        path = [[hx, hy], [hx + 150 * Math.cos(a - 0.25), hy + 150 * Math.sin(a - 0.25)],
          [hx + 150 * Math.cos(a + 0.25), hy + 150 * Math.sin(a + 0.25)], [hx, hy]].map((p) => p.join(","));
      }
      el("polyline", {
        points: path.join(" "), fill: "none", stroke: COLORS[i % COLORS.length],
        "stroke-width": 2.5, "stroke-dasharray": r.status === "planned" ? "6 4" : "none",
        class: "route", "data-route": r.route_id,
      }, svg);
    });
    for (const s of snap.stops) {
      el("circle", {
        cx: x(s.location), cy: y(s.location), r: 4, class: "stop " + s.status,
        fill: s.status === "expected" ? "#94a3b8" : "#d9480f",
      }, svg);
    }
    if (hub) {
      el("rect", { x: x(hub) - 8, y: y(hub) - 8, width: 16, height: 16, fill: "#12344d" }, svg);
      const label = el("text", { x: x(hub) + 12, y: y(hub) + 5, "font-size": 13 }, svg);
      label.textContent = snap.hub.name || snap.hub_id;
    }
  }

  function render(snap) {
    document.getElementById("clock").textContent = snap.clock || "–";
    document.getElementById("waves").textContent = snap.waves;
    document.getElementById("updates").textContent = updates;
    document.querySelector("#vehicles tbody").replaceChildren();
    for (const v of snap.vehicles) {
      const tr = row("#vehicles", [v.vehicle_id, v.type, v.state,
        v.battery_pct === null ? null : v.battery_pct + " %", v.route_id]);
      tr.children[2].className = "state-" + v.state;
    }
    document.querySelector("#routes tbody").replaceChildren();
    for (const r of snap.routes) {
      const tr = row("#routes", [r.route_id, r.status, r.stops.length, r.load_parcels,
        r.planned_km.toFixed(1)], "route-row " + r.status);
      tr.dataset.route = r.route_id;
    }
    const counts = {};
    for (const s of snap.stops) counts[s.status] = (counts[s.status] || 0) + 1;
    document.getElementById("queue").textContent = Object.keys(counts).length
      ? Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(" · ")
      : "no stops queued";
    drawMap(snap);
  }

  const url = `/v1/hubs/${encodeURIComponent(boot.hub)}/dispatch/stream?api_key=` +
    encodeURIComponent(boot.key);
  const source = new EventSource(url);
  const conn = document.getElementById("conn");
  source.addEventListener("open", () => { conn.textContent = "live"; conn.className = "pill live"; });
  source.addEventListener("error", () => { conn.textContent = "reconnecting…"; conn.className = "pill down"; });
  source.addEventListener("snapshot", (e) => { updates += 1; render(JSON.parse(e.data)); });
  source.addEventListener("change", (e) => { updates += 1; render(JSON.parse(e.data).snapshot); });
})();
