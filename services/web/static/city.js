// The city official's page: a month picker over the months that have data (latest first),
// banners for a month without data or with partial data, totals and a daily chart from
// the report's JSON, the full HTML report below, and the downloads. No CDN.
(function () {
  const boot = JSON.parse(document.body.dataset.boot);
  const $ = (id) => document.getElementById(id);
  const base = `/v1/cities/${encodeURIComponent(boot.city)}/reports/emissions`;

  // the difference is against a modelled baseline and may be negative (the hubs added CO2e)
  const CARDS = [
    ["saving_kgco2e", "kg CO2e difference (modelled)"], ["saving_pct", "% of the modelled baseline"],
    ["baseline_kgco2e", "kg CO2e without the hubs (modelled)"], ["actual_kgco2e", "kg CO2e with the hubs"],
    ["last_mile_km", "last-mile km"], ["routes", "routes"], ["consignments", "consignments"],
  ];

  function banner(text, kind) {
    const b = $("banner");
    b.textContent = text || "";
    b.className = "banner " + (kind || "");
    b.hidden = !text;
  }

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
    const svg = $("chart");
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

  function monthName(month) {
    return new Date(`${month}-01T12:00:00Z`).toLocaleDateString("en-GB", { month: "long", year: "numeric", timeZone: "UTC" });
  }

  async function show(month, months) {
    const known = months.find((m) => m.month === month);
    $("report-part").hidden = true;
    if (!known) {
      const have = months.map((m) => m.month).join(", ");
      banner(`No data for ${boot.city} in ${monthName(month)}: no consignment went through its hubs `
        + `that month, so there is no report to show. ${have ? `Months with data: ${have}.` : ""}`, "bad");
      return;
    }
    if (known.partial) {
      const why = known.open ? "the month is not over yet" : `data from ${known.first_day} to ${known.last_day} only`;
      banner(`Partial month: ${why} (${known.days_with_data} of ${known.days_in_month} days have data). `
        + "The figures cover those days only.", "warn");
    } else {
      banner("");
    }
    const q = (fmt) => `${base}/${month}?format=${fmt}`;
    for (const fmt of ["pdf", "csv", "json"]) {
      const a = $(fmt);
      a.href = q(fmt);
      a.setAttribute("download", `emissions-${boot.city}-${month}.${fmt}`);
    }
    const res = await fetch(q("json"));
    const box = $("totals");
    box.replaceChildren();
    $("headline").textContent = "";
    if (!res.ok) {
      let detail = res.statusText;
      try { detail = (await res.json()).detail; } catch (e) { /* not JSON */ }
      banner(`The report could not be built (${res.status}): ${detail}`, "bad");
      return;
    }
    const report = await res.json();
    $("report-part").hidden = false;
    $("report").src = q("html");
    if (report.headline) $("headline").textContent = report.headline.sentence;
    for (const [k, label] of CARDS) if (k in report.totals) box.appendChild(card(report.totals[k], label));
    chart(report.daily || []);
  }

  async function start() {
    const res = await fetch(base);
    if (!res.ok) {
      let detail = res.statusText;
      try { detail = (await res.json()).detail; } catch (e) { /* not JSON */ }
      banner(res.status === 404 ? `No data for ${boot.city} yet: ${detail}` : `${res.status}: ${detail}`, "bad");
      return;
    }
    const months = await res.json();
    const select = $("month");
    const newest = [...months].reverse();
    for (const m of newest) {
      const option = document.createElement("option");
      option.value = m.month;
      option.textContent = `${monthName(m.month)}${m.partial ? " (partial)" : ""}`;
      select.appendChild(option);
    }
    let month = boot.month || (newest[0] && newest[0].month);
    if (boot.month && !months.some((m) => m.month === boot.month)) {
      const option = document.createElement("option");  // asked for, without data: say so
      option.value = boot.month; option.textContent = `${monthName(boot.month)} (no data)`;
      select.prepend(option);
    }
    if (!month) { banner(`No data for ${boot.city} yet.`, "bad"); return; }
    select.value = month;
    await show(month, months);
    select.addEventListener("change", () => {
      history.replaceState(null, "", `?month=${select.value}`);
      show(select.value, months);
    });
    $("month-form").addEventListener("submit", (e) => { e.preventDefault(); select.dispatchEvent(new Event("change")); });
  }

  start();
})();
