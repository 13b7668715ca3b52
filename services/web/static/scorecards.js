// The operators' scorecard page: one month of every carrier's figures at the hub, from
// GET /v1/scorecards (the session cookie signs the request), as a table and a stacked bar
// chart of the outcomes. No CDN.
(function () {
  const boot = JSON.parse(document.body.dataset.boot);
  const $ = (id) => document.getElementById(id);
  const OUTCOMES = [
    ["on_time_check_ins", "#0b7a5a"], ["late_check_ins", "#d49a1a"], ["no_shows", "#b03a2e"],
    ["cancellations", "#8a94a6"], ["late_cancellations", "#6b3fa0"], ["pending", "#cfd6e0"],
  ];
  const pct = (v) => (v === null || v === undefined ? "–" : (v * 100).toFixed(1) + " %");

  function banner(text, kind) {
    const b = $("banner");
    b.textContent = text || "";
    b.className = "banner " + (kind || "");
    b.hidden = !text;
  }

  function table(rows) {
    const body = $("scorecards").tBodies[0];
    body.replaceChildren();
    rows.forEach((r) => {
      const tr = document.createElement("tr");
      [r.carrier_id, r.bookings, r.on_time_check_ins, r.late_check_ins, r.no_shows,
        r.cancellations, r.late_cancellations, r.pending,
        `${r.reschedules} (${r.late_reschedules})`, pct(r.on_time_rate), pct(r.no_show_rate),
      ].forEach((v) => {
        const td = document.createElement("td");
        td.textContent = String(v);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function chart(rows) {
    const svg = $("chart");
    const ns = "http://www.w3.org/2000/svg";
    svg.replaceChildren();
    const max = Math.max(1, ...rows.map((r) => r.bookings));
    const h = Math.min(36, 220 / Math.max(1, rows.length));
    rows.forEach((r, i) => {
      const y = 10 + i * h;
      const name = document.createElementNS(ns, "text");
      name.setAttribute("x", 0); name.setAttribute("y", y + h * 0.65); name.setAttribute("font-size", 12);
      name.textContent = r.carrier_id;
      svg.appendChild(name);
      let x = 120;
      OUTCOMES.forEach(([key, colour]) => {
        const w = (r[key] / max) * 500;
        if (!w) return;
        const rect = document.createElementNS(ns, "rect");
        rect.setAttribute("x", x); rect.setAttribute("y", y);
        rect.setAttribute("width", w); rect.setAttribute("height", h - 4);
        rect.setAttribute("fill", colour);
        const t = document.createElementNS(ns, "title");
        t.textContent = `${r.carrier_id}: ${r[key]} ${key.replace(/_/g, " ")}`;
        rect.appendChild(t);
        svg.appendChild(rect);
        x += w;
      });
    });
  }

  async function show(month) {
    banner("loading…");
    const url = `/v1/scorecards?hub=${encodeURIComponent(boot.hub)}&month=${encodeURIComponent(month)}`;
    const response = await fetch(url, { credentials: "same-origin" });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      banner(`${response.status}: ${body.detail || "the scorecards could not be read"}`, "bad");
      table([]); chart([]);
      return;
    }
    table(body.scorecards);
    chart(body.scorecards);
    if (!body.scorecards.length) banner(`No bookings at ${boot.hub} in ${month}.`);
    else if (!body.final) banner(`${month} is not settled yet: figures may still change.`);
    else banner("");
  }

  $("month").value = boot.month;
  $("month-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const month = $("month").value;
    history.replaceState(null, "", `?month=${month}`);
    show(month);
  });
  show(boot.month);
})();
