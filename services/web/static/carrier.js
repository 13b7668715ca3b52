// A carrier's bookings, newest slot first, from GET /v1/bookings (the session decides
// whose): filters, paging, times in each hub's own time zone, rejections with their
// reason and the alternatives the hub offered, and a CSV of everything the filters match.
(function () {
  const boot = JSON.parse(document.body.dataset.boot);
  const $ = (id) => document.getElementById(id);
  const form = $("filters");
  const zones = {};  // hub id -> time zone
  let offset = 0;

  function when(iso, hubId, withDate = true) {
    if (!iso) return "–";
    const options = { timeZone: zones[hubId] || "UTC", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    if (withDate) Object.assign(options, { year: "numeric", month: "2-digit", day: "2-digit" });
    return new Intl.DateTimeFormat("en-CA", options).format(new Date(iso)).replace(",", "");
  }

  function alternatives(b) {
    return (b.next_slots || []).map((s) => when(s.start, b.hub_id)).join("; ");
  }

  function query(limit, from) {
    const params = new URLSearchParams({ order: "newest", limit: String(limit), offset: String(from),
      carrier_id: boot.carrier });
    const data = new FormData(form);
    for (const name of ["status", "hub_id"]) if (data.get(name)) params.set(name, data.get(name));
    if (data.get("slot_from")) params.set("slot_from", `${data.get("slot_from")}T00:00:00Z`);
    if (data.get("slot_to")) {  // the whole day
      const end = new Date(`${data.get("slot_to")}T00:00:00Z`);
      end.setUTCDate(end.getUTCDate() + 1);
      params.set("slot_before", end.toISOString());
    }
    return `/v1/bookings?${params}`;
  }

  async function load() {
    const limit = Number(new FormData(form).get("limit") || 50);
    const res = await fetch(query(limit + 1, offset));  // one more: is there an older page?
    const count = $("count");
    const body = document.querySelector("#bookings tbody");
    body.replaceChildren();
    if (!res.ok) {
      let detail = res.statusText;
      try { detail = (await res.json()).detail; } catch (e) { /* not JSON */ }
      count.textContent = `The bookings could not be loaded (${res.status}): ${detail}`;
      count.className = "banner bad";
      return;
    }
    const rows = await res.json();
    const more = rows.length > limit;
    const shown = rows.slice(0, limit);
    count.className = "";
    count.textContent = shown.length
      ? `bookings ${offset + 1}–${offset + shown.length}${more ? " (more below)" : ""}, newest slot first`
      : "no booking matches these filters";
    for (const b of shown) {
      const tr = document.createElement("tr");
      tr.className = "booking " + b.status;
      const reason = b.status === "rejected" ? `${b.reason}: ${b.message || ""}` : (b.reason || "");
      for (const v of [when(b.slot_start, b.hub_id), b.hub_id, b.carrier_reference, b.status,
        reason, alternatives(b) || (b.status === "rejected" ? "none offered" : ""),
        when(b.decided_at, b.hub_id)]) {
        const td = document.createElement("td");
        td.textContent = v;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    $("page").textContent = `page ${Math.floor(offset / limit) + 1}`;
    $("newer").disabled = offset === 0;
    $("older").disabled = !more;
  }

  function csvCell(value) {
    const text = value === null || value === undefined ? "" : String(value);
    return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  }

  async function downloadCsv() {
    const all = [];
    for (let from = 0; from < 100000; from += 1000) {  // every page the filters match
      const res = await fetch(query(1000, from));
      if (!res.ok) return;
      const rows = await res.json();
      all.push(...rows);
      if (rows.length < 1000) break;
    }
    const header = ["booking_id", "carrier_reference", "hub_id", "status", "slot_start_utc",
      "slot_end_utc", "reason", "message", "alternatives_utc", "decided_at_utc", "updated_at_utc"];
    const lines = [header.join(",")];
    for (const b of all) {
      lines.push([b.booking_id, b.carrier_reference, b.hub_id, b.status, b.slot_start, b.slot_end,
        b.reason, b.message, (b.next_slots || []).map((s) => s.start).join(" "), b.decided_at,
        b.updated_at].map(csvCell).join(","));
    }
    const blob = new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `bookings-${boot.carrier}.csv`;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); offset = 0; load(); });
  $("newer").addEventListener("click", () => {
    offset = Math.max(0, offset - Number(new FormData(form).get("limit") || 50)); load();
  });
  $("older").addEventListener("click", () => {
    offset += Number(new FormData(form).get("limit") || 50); load();
  });
  $("csv").addEventListener("click", downloadCsv);

  fetch("/v1/hubs").then((r) => (r.ok ? r.json() : [])).then((hubs) => {
    const select = form.elements.hub_id;
    for (const h of hubs) {
      zones[h.id] = h.city.timezone;
      const option = document.createElement("option");
      option.value = h.id; option.textContent = `${h.id} (${h.city.name})`;
      select.appendChild(option);
    }
    load();
  });
})();
