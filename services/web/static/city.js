// The city official's page: totals and a daily chart drawn from the report's JSON, the
// full HTML report (with its own charts) below, and the downloads. No CDN.
(function () {
  const boot = JSON.parse(document.body.dataset.boot);
  const base = `/v1/cities/${encodeURIComponent(boot.city)}/reports/emissions/${boot.month}`;
  const q = (fmt) => `${base}?format=${fmt}&api_key=${encodeURIComponent(boot.key)}`;
  document.getElementById("month").value = boot.month;
  document.getElementById("key").value = boot.key;
  for (const fmt of ["pdf", "csv", "json"]) {
    const a = document.getElementById(fmt);
    a.href = q(fmt);
    a.setAttribute("download", `emissions-${boot.city}-${boot.month}.${fmt}`);
  }
  document.getElementById("report").src = q("html");

  // the difference is against a modelled baseline and may be negative (the hubs added CO2e)
  const CARDS = [
    ["saving_kgco2e", "kg CO2e difference (modelled)"], ["saving_pct", "% of the modelled baseline"],
    ["baseline_kgco2e", "kg CO2e without the hubs (modelled)"], ["actual_kgco2e", "kg CO2e with the hubs"],
    ["last_mile_km", "last-mile km"], ["routes", "routes"], ["consignments", "consignments"],
  ];

  function card(value, label) {
    const div = document.createElement("div");
    div.className = "card";
    const b = document.createElement("b");
    b.textContent = typeof value === "number" ? value.toLocaleString("en", { maximumFractionDigits: 1 }) : String(value);
    const span = document.createElement("span");
    span.textContent = label;
    div.append(b, span);
    return div;
  }

  function chart(daily) {
    const svg = document.getElementById("chart");
    const ns = "http://www.w3.org/2000/svg";
    svg.replaceChildren();
    const values = daily.map((d) => Number(d.saving_kgco2e || 0));
    const max = Math.max(1, ...values.map(Math.abs));
    const w = 600 / Math.max(1, values.length);
    const zero = 110; // the line: avoided above, added below
    values.forEach((v, i) => {
      const h = (Math.abs(v) / max) * 90;
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("x", 30 + i * w + 1);
      r.setAttribute("y", v >= 0 ? zero - h : zero);
      r.setAttribute("width", Math.max(1, w - 2));
      r.setAttribute("height", h);
      r.setAttribute("fill", v >= 0 ? "#0b7a5a" : "#b03a2e");
      r.setAttribute("class", "bar");
      const t = document.createElementNS(ns, "title");
      t.textContent = `${daily[i].date || i + 1}: ${v.toFixed(1)} kg`;
      r.appendChild(t);
      svg.appendChild(r);
    });
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", 30); label.setAttribute("y", 14); label.setAttribute("font-size", 12);
    label.textContent = `largest ${max.toFixed(1)} kg/day`;
    svg.appendChild(label);
  }

  fetch(q("json")).then(async (res) => {
    const box = document.getElementById("totals");
    if (!res.ok) { box.textContent = `no report: ${res.status} ${await res.text()}`; return; }
    const report = await res.json();
    if (report.headline) document.getElementById("headline").textContent = report.headline.sentence;
    for (const [k, label] of CARDS) if (k in report.totals) box.appendChild(card(report.totals[k], label));
    chart(report.daily || []);
  });
})();
